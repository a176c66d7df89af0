// scribe/train/init.hpp — a model's weights for training from scratch, drawn as
// Hugging Face's _init_weights draws them: each weight as its declaration says
// (models/declare.hpp) — normal with standard deviation initializer_range (times
// the declared scale: GPT-2's residual projections), with a token embedding's
// padding row zero; biases zero; norms' scales one.
//
//     auto w = train::initial_weights(Family::weights(c), c.initializer_range, seed);
//
// The numbers are counter-based, so they depend only on the seed, the weight's
// place in the list and the element's position, never on threads or order:
// element p of weight i is a normal (Box–Muller of the two output words) of
// Threefry-2x32 (ops/random.hpp's, on the host) keyed by the seed, at counter
// (i, p). The same seed gives the same model on any machine.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

#include "../core/error.hpp"
#include "../cpu/array.hpp"
#include "../models/common.hpp"

namespace scribe::train {

// Threefry-2x32 with 20 rounds (JAX's threefry2x32) of counter words (x0, x1)
// under key (k0, k1): ops/random.hpp's graph computes the same words.
inline std::array<std::uint32_t, 2> threefry_2x32(std::uint32_t k0, std::uint32_t k1, std::uint32_t x0, std::uint32_t x1) {
    constexpr int rotations[2][4] = {{13, 15, 26, 6}, {17, 29, 16, 24}};
    const std::uint32_t ks[3] = {k0, k1, k0 ^ k1 ^ 0x1BD11BDAu};
    x0 += ks[0];
    x1 += ks[1];
    for (std::uint32_t group = 1; group <= 5; ++group) {
        for (const int r : rotations[(group - 1) % 2]) {
            x0 += x1;
            x1 = ((x1 << r) | (x1 >> (32 - r))) ^ x0;
        }
        x0 += ks[group % 3];
        x1 += ks[(group + 1) % 3] + group;
    }
    return {x0, x1};
}

// A standard normal from counter (hi, lo) under the seed's key.
inline double standard_normal(std::uint64_t seed, std::uint32_t hi, std::uint32_t lo) {
    const auto [a, b] = threefry_2x32(static_cast<std::uint32_t>(seed >> 32), static_cast<std::uint32_t>(seed), hi, lo);
    const double u1 = (static_cast<double>(a >> 8) + 0.5) / 16777216.0;  // (0, 1): its log is finite
    const double u2 = static_cast<double>(b >> 8) / 16777216.0;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// Weights as `specs` declare them, f32 in the dims the graphs read (each stored
// shape's bytes, row-major), with normals of standard deviation `std` × each
// weight's scale, drawn from `seed` on `threads` threads (0: the machine's).
inline cpu::named_arrays initial_weights(const std::vector<models::weight_spec>& specs, double std, std::uint64_t seed,
                                         unsigned threads = 0) {
    if (!(std > 0) || !std::isfinite(std)) throw error("initial weights: the standard deviation must be positive, got " + std::to_string(std));
    if (specs.size() > 0xffffffffu) throw error("initial weights: more than 2^32 weights");
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    cpu::named_arrays out;
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const auto& s = specs[i];
        auto a = cpu::array::uninitialized(dtype::f32, s.dims);
        const auto n = a.size();
        if (n > (std::int64_t{1} << 32))
            throw error("initial weights: " + s.name + " has " + std::to_string(n) + " elements, more than 2^32");
        auto* v = reinterpret_cast<float*>(a.mutable_data());
        using fill = models::weight_init::fill;
        if (s.init.kind != fill::normal) {
            std::fill(v, v + n, s.init.kind == fill::ones ? 1.0f : 0.0f);
        } else {
            const double sd = std * s.init.scale;
            auto draw = [&](std::int64_t begin, std::int64_t end) {
                for (auto p = begin; p < end; ++p)
                    v[p] = static_cast<float>(sd * standard_normal(seed, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(p)));
            };
            const auto parts = std::min<std::int64_t>(threads, std::max<std::int64_t>(1, n / 65536));
            std::vector<std::jthread> pool;
            for (std::int64_t t = 1; t < parts; ++t) pool.emplace_back(draw, n * t / parts, n * (t + 1) / parts);
            draw(0, n / parts);
        }
        if (s.init.zero_row) {
            const auto rows = s.dims.empty() ? 0 : s.dims.front().extent;
            if (*s.init.zero_row < 0 || *s.init.zero_row >= rows)
                throw error("initial weights: " + s.name + "'s padding row " + std::to_string(*s.init.zero_row) + " is not one of its " +
                            std::to_string(rows) + " rows");
            const auto width = n / rows;
            std::fill(v + *s.init.zero_row * width, v + (*s.init.zero_row + 1) * width, 0.0f);
        }
        out.emplace_back(s.name, std::move(a));
    }
    return out;
}

}  // namespace scribe::train
