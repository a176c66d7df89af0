// scribe/runtime/sampling.hpp — choosing the next token from a row of logits:
// greedy, or sampled with temperature, top-k and top-p (nucleus), from a seeded
// generator so a run can be repeated.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace scribe::runtime {

struct sampling {
    double temperature = 0.0;  // 0: greedy (argmax, the first of equal maxima)
    std::int64_t top_k = 0;    // keep the k most likely tokens; 0: all
    double top_p = 1.0;        // keep the smallest set whose probability reaches p
    std::uint64_t seed = 0;

    void check() const {
        if (!(temperature >= 0.0) || !std::isfinite(temperature))
            throw error("sampling: temperature must be a finite number >= 0, got " + std::to_string(temperature));
        if (top_k < 0) throw error("sampling: top_k must be >= 0, got " + std::to_string(top_k));
        if (!(top_p > 0.0 && top_p <= 1.0)) throw error("sampling: top_p must be in (0, 1], got " + std::to_string(top_p));
    }
    bool greedy() const { return temperature == 0.0; }
};

inline std::int32_t argmax(std::span<const float> logits) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < logits.size(); ++i)
        if (logits[i] > logits[best]) best = i;
    return static_cast<std::int32_t>(best);
}

// The next token from one row of logits.
inline std::int32_t sample(std::span<const float> logits, const sampling& s, std::mt19937_64& rng) {
    if (logits.empty()) throw error("sampling: empty row of logits");
    if (s.greedy()) return argmax(logits);
    // Candidates by descending logit (index order breaks ties, so runs repeat).
    std::vector<std::int32_t> order(logits.size());
    std::iota(order.begin(), order.end(), 0);
    const auto keep = s.top_k > 0 ? std::min<std::size_t>(static_cast<std::size_t>(s.top_k), order.size()) : order.size();
    auto by_logit = [&](std::int32_t a, std::int32_t b) {
        const auto la = logits[static_cast<std::size_t>(a)], lb = logits[static_cast<std::size_t>(b)];
        return la > lb || (la == lb && a < b);
    };
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(), by_logit);
    order.resize(keep);
    // Softmax of logits / temperature over the candidates, in double.
    const double top = logits[static_cast<std::size_t>(order[0])];
    std::vector<double> p(order.size());
    double total = 0;
    for (std::size_t i = 0; i < order.size(); ++i) {
        p[i] = std::exp((logits[static_cast<std::size_t>(order[i])] - top) / s.temperature);
        total += p[i];
    }
    // Nucleus: the shortest prefix whose mass reaches top_p.
    std::size_t n = order.size();
    if (s.top_p < 1.0) {
        double mass = 0;
        for (std::size_t i = 0; i < order.size(); ++i) {
            mass += p[i] / total;
            if (mass >= s.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    const double kept = std::accumulate(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(n), 0.0);
    double u = std::uniform_real_distribution<double>(0.0, kept)(rng);
    for (std::size_t i = 0; i < n; ++i) {
        if (u < p[i]) return order[i];
        u -= p[i];
    }
    return order[n - 1];
}

}  // namespace scribe::runtime
