// scribe/core/checked.hpp — arithmetic on sizes, counts and positions that came
// from outside (a config file, a tensor header, a flag): every overflow becomes a
// scribe::error that names the quantity, instead of a wrapped value.
//
//     const auto bytes = checked::mul(elements, std::int64_t{4}, "the KV cache's bytes");
#pragma once

#include <cstdio>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

#include "error.hpp"

namespace scribe::checked {

// a * b, a + b of 64-bit integers (signed or not); `what` names the result in the error.
template <class T>
    requires std::is_integral_v<T> && (sizeof(T) == 8)
T mul(T a, T b, std::string_view what) {
    T r = 0;
    if (__builtin_mul_overflow(a, b, &r))
        throw error(std::string(what) + ": " + std::to_string(a) + " * " + std::to_string(b) + " is too large (overflows 64 bits)");
    return r;
}
template <class T>
    requires std::is_integral_v<T> && (sizeof(T) == 8)
T add(T a, T b, std::string_view what) {
    T r = 0;
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
