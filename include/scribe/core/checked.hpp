// scribe/core/checked.hpp — arithmetic on sizes, counts and positions that came
// from outside (a config file, a tensor header, a flag): every overflow becomes a
// scribe::error that names the quantity, instead of a wrapped value.
//
//     const auto bytes = checked::mul(elements, 4, "the KV cache's bytes");
#pragma once

#include <cstdio>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "error.hpp"

namespace scribe::checked {

// a * b, a + b; `what` names the result in the error.
inline std::int64_t mul(std::int64_t a, std::int64_t b, std::string_view what) {
    std::int64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r))
        throw error(std::string(what) + ": " + std::to_string(a) + " * " + std::to_string(b) + " is too large (overflows 64 bits)");
    return r;
}
inline std::int64_t add(std::int64_t a, std::int64_t b, std::string_view what) {
    std::int64_t r = 0;
    if (__builtin_add_overflow(a, b, &r))
        throw error(std::string(what) + ": " + std::to_string(a) + " + " + std::to_string(b) + " is too large (overflows 64 bits)");
    return r;
}
inline std::uint64_t mul(std::uint64_t a, std::uint64_t b, std::string_view what) {
    std::uint64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r))
        throw error(std::string(what) + ": " + std::to_string(a) + " * " + std::to_string(b) + " is too large (overflows 64 bits)");
    return r;
}
inline std::uint64_t add(std::uint64_t a, std::uint64_t b, std::string_view what) {
    std::uint64_t r = 0;
    if (__builtin_add_overflow(a, b, &r))
        throw error(std::string(what) + ": " + std::to_string(a) + " + " + std::to_string(b) + " is too large (overflows 64 bits)");
    return r;
}

// The product of extents (a shape's elements), each non-negative.
template <class Range>
std::int64_t product(const Range& extents, std::string_view what) {
    std::int64_t n = 1;
    for (auto e : extents) {
        if (e < 0) throw error(std::string(what) + ": negative extent " + std::to_string(e));
        n = mul(n, static_cast<std::int64_t>(e), what);
    }
    return n;
}

// A number as a message shows it: %g (1e-300, 1e+308, 0.5), never 300 digits.
inline std::string shown(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return b;
}

}  // namespace scribe::checked
