// scribe/core/dtype.hpp — element types at run time: the enum the graph IR stores,
// their XLA names and numbers, and the 16-bit float storage types.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>

#include "error.hpp"

namespace scribe {

enum class dtype : std::uint8_t { pred, s8, u8, s32, s64, u32, f16, bf16, f32, f64 };
inline constexpr int dtype_count = 10;

struct dtype_info {
    std::string_view name;  // as in HLO text: "f32"
    int xla_type;           // xla::PrimitiveType number
    int bytes;
    bool is_float;
    bool is_signed;
};

inline constexpr dtype_info dtype_table[dtype_count] = {
    {"pred", 1, 1, false, false}, {"s8", 2, 1, false, true},   {"u8", 6, 1, false, false},
    {"s32", 4, 4, false, true},   {"s64", 5, 8, false, true},  {"u32", 8, 4, false, false},
    {"f16", 10, 2, true, true},   {"bf16", 16, 2, true, true}, {"f32", 11, 4, true, true},
    {"f64", 12, 8, true, true},
};

constexpr const dtype_info& info(dtype t) { return dtype_table[static_cast<int>(t)]; }
constexpr std::string_view name(dtype t) { return info(t).name; }
constexpr bool is_float(dtype t) { return info(t).is_float; }
constexpr bool is_integer(dtype t) { return !info(t).is_float && t != dtype::pred; }

// IEEE half precision, stored as its bits.
struct half {
    std::uint16_t bits = 0;
};
// bfloat16: the top half of an f32, stored as its bits.
struct bfloat16 {
    std::uint16_t bits = 0;
};

// Round-to-nearest-even conversions, with subnormals and infinities; a NaN comes out quiet.
constexpr std::uint16_t f32_to_f16_bits(float value) {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(value);
    const std::uint32_t sign = (x >> 16) & 0x8000u;
    const std::uint32_t exp = (x >> 23) & 0xffu;
    std::uint32_t mant = x & 0x7fffffu;
    if (exp == 0xff) return static_cast<std::uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0u));
    const int e = static_cast<int>(exp) - 127 + 15;
    if (e >= 31) return static_cast<std::uint16_t>(sign | 0x7c00u);
    if (e <= 0) {
        if (e < -10) return static_cast<std::uint16_t>(sign);
        mant |= 0x800000u;
        const int shift = 14 - e;
        std::uint32_t h = mant >> shift;
        const std::uint32_t rem = mant & ((1u << shift) - 1);
        const std::uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (h & 1u))) ++h;
        return static_cast<std::uint16_t>(sign | h);
    }
    std::uint32_t h = (static_cast<std::uint32_t>(e) << 10) | (mant >> 13);
    const std::uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: correct
    return static_cast<std::uint16_t>(sign | h);
}

constexpr float f16_bits_to_f32(std::uint16_t h) {
    const std::uint32_t sign = (static_cast<std::uint32_t>(h) & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1fu;
    std::uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13) | (mant ? 0x400000u : 0u));  // NaN: quiet
    if (exp == 0) {
        if (mant == 0) return std::bit_cast<float>(sign);
        int e = -1;
        do {
            ++e;
            mant <<= 1;
        } while ((mant & 0x400u) == 0);
        return std::bit_cast<float>(sign | (static_cast<std::uint32_t>(127 - 15 - e) << 23) |
                                    ((mant & 0x3ffu) << 13));
    }
    return std::bit_cast<float>(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

constexpr std::uint16_t f32_to_bf16_bits(float value) {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(value);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
    const std::uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
    return static_cast<std::uint16_t>((x + rounding) >> 16);
}

constexpr float bf16_bits_to_f32(std::uint16_t b) {
    return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

namespace detail {
// A double as integer type I: truncated toward zero, saturated at I's range, NaN -> 0.
template <class I>
I saturate(double v) {
    if (std::isnan(v)) return 0;
    constexpr double lo = static_cast<double>(std::numeric_limits<I>::min());
    constexpr double hi = static_cast<double>(std::numeric_limits<I>::max());
    if (v <= lo) return std::numeric_limits<I>::min();
    if (v >= hi) return std::numeric_limits<I>::max();
    return static_cast<I>(v);
}
}  // namespace detail

// Writes `value` converted to `t` (little-endian storage) at `out`; `out` holds
// info(t).bytes bytes. Integers truncate toward zero and saturate at their range.
inline void store_as(dtype t, double value, unsigned char* out) {
    auto put = [out](auto v) { std::memcpy(out, &v, sizeof v); };
    switch (t) {
        case dtype::pred: put(static_cast<std::uint8_t>(value != 0.0)); break;
        case dtype::s8: put(detail::saturate<std::int8_t>(value)); break;
        case dtype::u8: put(detail::saturate<std::uint8_t>(value)); break;
        case dtype::s32: put(detail::saturate<std::int32_t>(value)); break;
        case dtype::s64: put(detail::saturate<std::int64_t>(value)); break;
        case dtype::u32: put(detail::saturate<std::uint32_t>(value)); break;
        case dtype::f16: put(f32_to_f16_bits(static_cast<float>(value))); break;
        case dtype::bf16: put(f32_to_bf16_bits(static_cast<float>(value))); break;
        case dtype::f32: put(static_cast<float>(value)); break;
        case dtype::f64: put(value); break;
    }
}

// Reads one element of type `t` at `in` as a double.
inline double load_as_double(dtype t, const unsigned char* in) {
    auto get = [in]<class T>(T) {
        T v;
        std::memcpy(&v, in, sizeof v);
        return v;
    };
    switch (t) {
        case dtype::pred: return get(std::uint8_t{}) != 0;
        case dtype::s8: return get(std::int8_t{});
        case dtype::u8: return get(std::uint8_t{});
        case dtype::s32: return get(std::int32_t{});
        case dtype::s64: return static_cast<double>(get(std::int64_t{}));
        case dtype::u32: return get(std::uint32_t{});
        case dtype::f16: return f16_bits_to_f32(get(std::uint16_t{}));
        case dtype::bf16: return bf16_bits_to_f32(get(std::uint16_t{}));
        case dtype::f32: return get(float{});
        case dtype::f64: return get(double{});
    }
    return 0.0;
}

// Reads one integer (or pred) element exactly, as an int64.
inline std::int64_t load_as_int(dtype t, const unsigned char* in) {
    auto get = [in]<class T>(T) {
        T v;
        std::memcpy(&v, in, sizeof v);
        return static_cast<std::int64_t>(v);
    };
    switch (t) {
        case dtype::pred: return get(std::uint8_t{}) != 0;
        case dtype::s8: return get(std::int8_t{});
        case dtype::u8: return get(std::uint8_t{});
        case dtype::s32: return get(std::int32_t{});
        case dtype::s64: return get(std::int64_t{});
        case dtype::u32: return get(std::uint32_t{});
        default: throw error("load_as_int: " + std::string(name(t)) + " is not an integer type");
    }
}

}  // namespace scribe
