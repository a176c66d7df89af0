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
#include "../cpu/simd/elementwise.hpp"

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

// The first of the largest logits (a decode step's greedy choice, among 50257 for
// GPT-2). By vectors: the row's maximum, then the first value equal to it; a row
// holding a NaN (which no comparison picks) is walked value by value.
inline std::int32_t argmax(std::span<const float> logits) {
    const auto n = static_cast<std::int64_t>(logits.size());
    if (const float top = cpu::simd::max(logits.data(), n); n > 0 && !std::isnan(top))
        return static_cast<std::int32_t>(cpu::simd::first_equal(logits.data(), n, top));
    std::size_t best = 0;
    for (std::size_t i = 1; i < logits.size(); ++i)
        if (logits[i] > logits[best]) best = i;
    return static_cast<std::int32_t>(best);
}

namespace detail {

// The tokens a sampled draw may give, by descending logit (index order breaks
// ties, so runs repeat): the top-k, then the shortest prefix whose probability
// reaches top-p; with their weights exp((logit - max) / temperature).
struct candidates {
    std::vector<std::int32_t> order;
    std::vector<double> weight;
    double total = 0;  // of the weights kept
};

inline candidates sampling_candidates(std::span<const float> logits, const sampling& s) {
    candidates c;
    c.order.resize(logits.size());
    std::iota(c.order.begin(), c.order.end(), 0);
    const auto keep = s.top_k > 0 ? std::min<std::size_t>(static_cast<std::size_t>(s.top_k), c.order.size()) : c.order.size();
    std::partial_sort(c.order.begin(), c.order.begin() + static_cast<std::ptrdiff_t>(keep), c.order.end(), [&](std::int32_t a, std::int32_t b) {
        const auto la = logits[static_cast<std::size_t>(a)], lb = logits[static_cast<std::size_t>(b)];
        return la > lb || (la == lb && a < b);
    });
    c.order.resize(keep);
    // Softmax of logits / temperature over the candidates, in double.
    const double top = logits[static_cast<std::size_t>(c.order[0])];
    c.weight.resize(c.order.size());
    double total = 0;
    for (std::size_t i = 0; i < c.order.size(); ++i)
        total += c.weight[i] = std::exp((logits[static_cast<std::size_t>(c.order[i])] - top) / s.temperature);
    // Nucleus: the shortest prefix whose mass reaches top_p.
    std::size_t n = c.order.size();
    if (s.top_p < 1.0) {
        double mass = 0;
        for (std::size_t i = 0; i < c.order.size(); ++i) {
            mass += c.weight[i] / total;
            if (mass >= s.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    c.order.resize(n);
    c.weight.resize(n);
    c.total = std::accumulate(c.weight.begin(), c.weight.end(), 0.0);
    return c;
}

}  // namespace detail

// The next token from one row of logits.
inline std::int32_t sample(std::span<const float> logits, const sampling& s, std::mt19937_64& rng) {
    if (logits.empty()) throw error("sampling: empty row of logits");
    if (s.greedy()) return argmax(logits);
    const auto c = detail::sampling_candidates(logits, s);
    double u = std::uniform_real_distribution<double>(0.0, c.total)(rng);
    for (std::size_t i = 0; i < c.order.size(); ++i) {
        if (u < c.weight[i]) return c.order[i];
        u -= c.weight[i];
    }
    return c.order.back();
}

// The distribution sample() draws from, over every token of the row: the
// softmax of logits / temperature over the top-k and top-p candidates, zero
// elsewhere (greedy: all of it on the argmax). In double; sums to 1.
inline std::vector<double> probabilities(std::span<const float> logits, const sampling& s) {
    if (logits.empty()) throw error("sampling: empty row of logits");
    std::vector<double> p(logits.size(), 0.0);
    if (s.greedy()) {
        p[static_cast<std::size_t>(argmax(logits))] = 1.0;
        return p;
    }
    const auto c = detail::sampling_candidates(logits, s);
    for (std::size_t i = 0; i < c.order.size(); ++i) p[static_cast<std::size_t>(c.order[i])] = c.weight[i] / c.total;
    return p;
}

// A token drawn from weights p (not all zero; they need not sum to 1).
inline std::int32_t draw(std::span<const double> p, std::mt19937_64& rng) {
    const double total = std::accumulate(p.begin(), p.end(), 0.0);
    if (!(total > 0)) throw error("sampling: a distribution with no mass");
    double u = std::uniform_real_distribution<double>(0.0, total)(rng);
    std::size_t last = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
        if (p[i] <= 0) continue;
        if (u < p[i]) return static_cast<std::int32_t>(i);
        u -= p[i];
        last = i;
    }
    return static_cast<std::int32_t>(last);  // rounding left u at the very end
}

}  // namespace scribe::runtime
