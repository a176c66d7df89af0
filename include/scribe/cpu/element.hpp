// scribe/cpu/element.hpp — how each dtype is stored and computed on the CPU:
// 16-bit floats compute in f32, integers in int64 (wrapping to their width when
// stored), pred as bool.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../core/dtype.hpp"

namespace scribe::cpu {

template <dtype D>
struct element;

template <class S, class C>
struct plain_element {
    using storage = S;
    using compute = C;
    static C load(const unsigned char* p, std::int64_t i) {
        S v;
        std::memcpy(&v, p + i * static_cast<std::int64_t>(sizeof(S)), sizeof(S));
        return static_cast<C>(v);
    }
    static void store(unsigned char* p, std::int64_t i, C v) {
        const S s = static_cast<S>(v);
        std::memcpy(p + i * static_cast<std::int64_t>(sizeof(S)), &s, sizeof(S));
    }
};

template <> struct element<dtype::pred> {
    using storage = std::uint8_t;
    using compute = bool;
    static bool load(const unsigned char* p, std::int64_t i) { return p[i] != 0; }
    static void store(unsigned char* p, std::int64_t i, bool v) { p[i] = v ? 1 : 0; }
};
template <> struct element<dtype::s8> : plain_element<std::int8_t, std::int64_t> {};
template <> struct element<dtype::u8> : plain_element<std::uint8_t, std::int64_t> {};
template <> struct element<dtype::s32> : plain_element<std::int32_t, std::int64_t> {};
template <> struct element<dtype::s64> : plain_element<std::int64_t, std::int64_t> {};
template <> struct element<dtype::u32> : plain_element<std::uint32_t, std::int64_t> {};
template <> struct element<dtype::f32> : plain_element<float, float> {};
template <> struct element<dtype::f64> : plain_element<double, double> {};
// 16-bit floats: stored as their bits, computed in f32.
template <float (*Widen)(std::uint16_t), std::uint16_t (*Narrow)(float)>
struct sixteen_bit_element {
    using storage = std::uint16_t;
    using compute = float;
    static float load(const unsigned char* p, std::int64_t i) {
        std::uint16_t b;
        std::memcpy(&b, p + 2 * i, 2);
        return Widen(b);
    }
    static void store(unsigned char* p, std::int64_t i, float v) {
        const std::uint16_t b = Narrow(v);
        std::memcpy(p + 2 * i, &b, 2);
    }
};
template <> struct element<dtype::f16> : sixteen_bit_element<f16_bits_to_f32, f32_to_f16_bits> {};
template <> struct element<dtype::bf16> : sixteen_bit_element<bf16_bits_to_f32, f32_to_bf16_bits> {};

// Calls f(std::integral_constant<dtype, D>{}) for the run-time dtype t.
template <class F>
decltype(auto) visit(dtype t, F&& f) {
    switch (t) {
        case dtype::pred: return f(std::integral_constant<dtype, dtype::pred>{});
        case dtype::s8: return f(std::integral_constant<dtype, dtype::s8>{});
        case dtype::u8: return f(std::integral_constant<dtype, dtype::u8>{});
        case dtype::s32: return f(std::integral_constant<dtype, dtype::s32>{});
        case dtype::s64: return f(std::integral_constant<dtype, dtype::s64>{});
        case dtype::u32: return f(std::integral_constant<dtype, dtype::u32>{});
        case dtype::f16: return f(std::integral_constant<dtype, dtype::f16>{});
        case dtype::bf16: return f(std::integral_constant<dtype, dtype::bf16>{});
        case dtype::f32: return f(std::integral_constant<dtype, dtype::f32>{});
        case dtype::f64: return f(std::integral_constant<dtype, dtype::f64>{});
    }
    throw error("cpu: unknown dtype");
}

}  // namespace scribe::cpu
