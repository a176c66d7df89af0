// scribe/cpu/simd/elementwise.hpp — element-wise math on f32 blocks with xsimd, the
// inner loops of the fused kernel (cpu/fusion.hpp) and of the reductions
// (cpu/kernels.hpp).
//
// xsimd picks the widest instruction set the including translation unit is
// compiled for (AVX-512 with -march=native on Zen 4, SSE2 by default on x86-64):
// the header-only library adapts to its user's flags. Semantics follow XLA's:
// maximum and minimum propagate NaN; rsqrt and logistic are exact-formula, not
// the approximate instructions.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "../../core/dtype.hpp"
#include "../../graph/op.hpp"

// GCC 12 reports its own AVX-512 intrinsic headers (_mm512_undefined_* inside
// xsimd's functions) as maybe-uninitialized, or as uninitialized where GCC
// chooses not to inline xsimd's exp (which depends on what else the translation
// unit uses, expm1 for one); it is false either way. The region covers
// xsimd's definitions and ours, where they are inlined.
#if defined(__GNUC__) && !defined(__clang__)  // GCC's false positive; Clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <xsimd/xsimd.hpp>

namespace scribe::cpu::simd {

using fbatch = xsimd::batch<float>;
inline constexpr std::int64_t lanes = static_cast<std::int64_t>(fbatch::size);

// y[0:n] = v. (A loop the compiler would vectorize only at -O3: GCC's -O2 stores
// one float at a time, and the fused kernel spreads every broadcast row this way.)
inline void fill(float* y, float v, std::int64_t n) {
    const fbatch b(v);
    std::int64_t i = 0;
    for (; i + lanes <= n; i += lanes) b.store_unaligned(y + i);
    for (; i < n; ++i) y[i] = v;
}

// v rounded to bf16 and back, as a bf16 store keeps it: nearest even, a NaN
// quieted (the scalar conversion's rule, core/dtype.hpp, bit for bit).
inline fbatch round_bf16(fbatch v) {
    using ibatch = xsimd::batch<std::int32_t>;
    const auto bits = xsimd::bitwise_cast<ibatch>(v);
    const auto rounded = bits + (((bits >> 16) & ibatch(1)) + ibatch(0x7fff));
    const auto quiet = bits | ibatch(0x400000);
    const auto kept = xsimd::select(xsimd::isnan(v), xsimd::bitwise_cast<fbatch>(quiet), xsimd::bitwise_cast<fbatch>(rounded));
    return kept & xsimd::bitwise_cast<fbatch>(ibatch(static_cast<std::int32_t>(0xffff0000u)));
}
inline float round_bf16(float v) { return bf16_bits_to_f32(f32_to_bf16_bits(v)); }

// Applies a batch function over [0, n), with the scalar function on the tail;
// with Bf16, each result is rounded to bf16 before it is stored (a bf16 op's
// value, in the same pass rather than a second one over the block).
template <bool Bf16 = false, class V, class S>
void map1(const float* x, float* y, std::int64_t n, V&& vf, S&& sf) {
    std::int64_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        auto r = vf(fbatch::load_unaligned(x + i));
        if constexpr (Bf16) r = round_bf16(r);
        r.store_unaligned(y + i);
    }
    for (; i < n; ++i) y[i] = Bf16 ? round_bf16(sf(x[i])) : sf(x[i]);
}
template <bool Bf16 = false, class V, class S>
void map2(const float* a, const float* b, float* y, std::int64_t n, V&& vf, S&& sf) {
    std::int64_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        auto r = vf(fbatch::load_unaligned(a + i), fbatch::load_unaligned(b + i));
        if constexpr (Bf16) r = round_bf16(r);
        r.store_unaligned(y + i);
    }
    for (; i < n; ++i) y[i] = Bf16 ? round_bf16(sf(a[i], b[i])) : sf(a[i], b[i]);
}

// erf as XLA lowers f32 erf (and Eigen computes it): x P(x^2) / Q(x^2) on x clamped
// to [-4, 4], beyond which erf rounds to +-1 in f32; degrees 13 over 8, absolute
// error below 4e-7 (xsimd's erf is within 1e-7 but evaluates both of its branches
// and an exp: 2.4x the time, and BERT's GELU runs it on every MLP activation).
// NaN stays NaN.
inline fbatch erf(fbatch x) {
    const fbatch c = xsimd::min(xsimd::max(x, fbatch(-4.0f)), fbatch(4.0f)), z = c * c;
    fbatch p = xsimd::fma(fbatch(-2.72614225801306e-10f), z, fbatch(2.77068142495902e-08f));
    p = xsimd::fma(p, z, fbatch(-2.10102402082508e-06f));
    p = xsimd::fma(p, z, fbatch(-5.69250639462346e-05f));
    p = xsimd::fma(p, z, fbatch(-7.34990630326855e-04f));
    p = xsimd::fma(p, z, fbatch(-2.95459980854025e-03f));
    p = xsimd::fma(p, z, fbatch(-1.60960333262415e-02f));
    fbatch q = xsimd::fma(fbatch(-1.45660718464996e-05f), z, fbatch(-2.13374055278905e-04f));
    q = xsimd::fma(q, z, fbatch(-1.68282697438203e-03f));
    q = xsimd::fma(q, z, fbatch(-7.37332916720468e-03f));
    q = xsimd::fma(q, z, fbatch(-1.42647390514189e-02f));
    return xsimd::select(xsimd::isnan(x), x, c * p / q);
}

// tanh as XLA's CPU backend emits f32 tanh (and Eigen computes it): x P(x^2) / Q(x^2)
// on x clamped to [-c, c], and x itself where |x| < 0.0004; degrees 13 over 6,
// within 6 ulp of libm's. The clamp is XLA's: where the quotient rounds to
// exactly +-1, with fused multiply-adds (xsimd's fma is fused where the build has
// FMA) or without, so tanh saturates at +-1 and never exceeds it. xsimd's tanh
// takes an exp and evaluates both of its branches: 1.8x the time, and GPT-2's
// GELU runs it on every MLP activation. NaN stays NaN.
inline fbatch tanh(fbatch x) {
#if defined(__FMA__) || defined(__aarch64__)
    constexpr float clamp = 7.99881172180175781f;
#else
    constexpr float clamp = 7.90531110763549805f;
#endif
    const fbatch c = xsimd::min(xsimd::max(x, fbatch(-clamp)), fbatch(clamp)), z = c * c;
    fbatch p = xsimd::fma(fbatch(-2.76076847742355e-16f), z, fbatch(2.00018790482477e-13f));
    p = xsimd::fma(p, z, fbatch(-8.60467152213735e-11f));
    p = xsimd::fma(p, z, fbatch(5.12229709037114e-08f));
    p = xsimd::fma(p, z, fbatch(1.48572235717979e-05f));
    p = xsimd::fma(p, z, fbatch(6.37261928875436e-04f));
    p = xsimd::fma(p, z, fbatch(4.89352455891786e-03f));
    fbatch q = xsimd::fma(fbatch(1.19825839466702e-06f), z, fbatch(1.18534705686654e-04f));
    q = xsimd::fma(q, z, fbatch(2.26843463243900e-03f));
    q = xsimd::fma(q, z, fbatch(4.89352518554385e-03f));
    return xsimd::select(xsimd::abs(x) < fbatch(0.0004f) || xsimd::isnan(x), x, c * p / q);
}

// The scalar forms (a block's tail) take the vector ones, so an element's value
// does not depend on where a block boundary falls, in a build whose xsimd fma is
// not fused (std::fma is) as in any other.
inline float erf(float x) { return simd::erf(fbatch(x)).get(0); }
inline float tanh(float x) { return simd::tanh(fbatch(x)).get(0); }

// y = op(x) for a unary float op (with Bf16, each result rounded to bf16); false
// if the op has no vector form here.
template <bool Bf16 = false>
bool unary(op k, const float* x, float* y, std::int64_t n) {
    switch (k) {
        case op::neg: map1<Bf16>(x, y, n, [](fbatch v) { return -v; }, [](float v) { return -v; }); return true;
        case op::abs: map1<Bf16>(x, y, n, [](fbatch v) { return xsimd::abs(v); }, [](float v) { return std::abs(v); }); return true;
        case op::sign:  // XLA's: zeros (either sign) and NaN stay as they are
            map1<Bf16>(x, y, n,
                 [](fbatch v) { return xsimd::select(v == fbatch(0.0f) || xsimd::isnan(v), v, xsimd::copysign(fbatch(1.0f), v)); },
                 [](float v) { return std::isnan(v) || v == 0.0f ? v : std::copysign(1.0f, v); });
            return true;
        case op::exp: map1<Bf16>(x, y, n, [](fbatch v) { return xsimd::exp(v); }, [](float v) { return std::exp(v); }); return true;
        case op::expm1: map1<Bf16>(x, y, n, [](fbatch v) { return xsimd::expm1(v); }, [](float v) { return std::expm1(v); }); return true;
        case op::log: map1<Bf16>(x, y, n, [](fbatch v) { return xsimd::log(v); }, [](float v) { return std::log(v); }); return true;
        case op::log1p: map1<Bf16>(x, y, n, [](fbatch v) { return xsimd::log1p(v); }, [](float v) { return std::log1p(v); }); return true;
        case op::sqrt: map1<Bf16>(x, y, n, [](fbatch v) { return xsimd::sqrt(v); }, [](float v) { return std::sqrt(v); }); return true;
        case op::rsqrt:
            map1<Bf16>(x, y, n, [](fbatch v) { return fbatch(1.0f) / xsimd::sqrt(v); }, [](float v) { return 1.0f / std::sqrt(v); });
            return true;
        case op::tanh: map1<Bf16>(x, y, n, [](fbatch v) { return simd::tanh(v); }, [](float v) { return simd::tanh(v); }); return true;
        case op::logistic:
            map1<Bf16>(x, y, n, [](fbatch v) { return fbatch(1.0f) / (fbatch(1.0f) + xsimd::exp(-v)); },
                 [](float v) { return 1.0f / (1.0f + std::exp(-v)); });
            return true;
        case op::erf: map1<Bf16>(x, y, n, [](fbatch v) { return simd::erf(v); }, [](float v) { return simd::erf(v); }); return true;
        case op::floor: map1<Bf16>(x, y, n, [](fbatch v) { return xsimd::floor(v); }, [](float v) { return std::floor(v); }); return true;
        default: return false;
    }
}

// y = a op b for a binary float op (with Bf16, each result rounded to bf16);
// false if the op has no vector form here.
template <bool Bf16 = false>
bool binary(op k, const float* a, const float* b, float* y, std::int64_t n) {
    static constexpr float nan = std::numeric_limits<float>::quiet_NaN();
    switch (k) {
        case op::add: map2<Bf16>(a, b, y, n, [](fbatch u, fbatch v) { return u + v; }, [](float u, float v) { return u + v; }); return true;
        case op::sub: map2<Bf16>(a, b, y, n, [](fbatch u, fbatch v) { return u - v; }, [](float u, float v) { return u - v; }); return true;
        case op::mul: map2<Bf16>(a, b, y, n, [](fbatch u, fbatch v) { return u * v; }, [](float u, float v) { return u * v; }); return true;
        case op::div: map2<Bf16>(a, b, y, n, [](fbatch u, fbatch v) { return u / v; }, [](float u, float v) { return u / v; }); return true;
        case op::max:
            map2<Bf16>(a, b, y, n, [](fbatch u, fbatch v) { return xsimd::select(xsimd::isnan(u) || xsimd::isnan(v), fbatch(nan), xsimd::max(u, v)); },
                 [](float u, float v) { return std::isnan(u) || std::isnan(v) ? nan : std::max(u, v); });
            return true;
        case op::min:
            map2<Bf16>(a, b, y, n, [](fbatch u, fbatch v) { return xsimd::select(xsimd::isnan(u) || xsimd::isnan(v), fbatch(nan), xsimd::min(u, v)); },
                 [](float u, float v) { return std::isnan(u) || std::isnan(v) ? nan : std::min(u, v); });
            return true;
        default: return false;
    }
}

// y = c != 0 ? a : b.
inline void select(const float* c, const float* a, const float* b, float* y, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + lanes <= n; i += lanes)
        xsimd::select(fbatch::load_unaligned(c + i) != fbatch(0.0f), fbatch::load_unaligned(a + i), fbatch::load_unaligned(b + i))
            .store_unaligned(y + i);
    for (; i < n; ++i) y[i] = c[i] != 0.0f ? a[i] : b[i];
}

// Reductions of a contiguous run, in f32: several accumulators, then a tree.
inline float sum(const float* x, std::int64_t n) {
    fbatch a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f);
    std::int64_t i = 0;
    for (; i + 4 * lanes <= n; i += 4 * lanes) {
        a0 += fbatch::load_unaligned(x + i);
        a1 += fbatch::load_unaligned(x + i + lanes);
        a2 += fbatch::load_unaligned(x + i + 2 * lanes);
        a3 += fbatch::load_unaligned(x + i + 3 * lanes);
    }
    for (; i + lanes <= n; i += lanes) a0 += fbatch::load_unaligned(x + i);
    float s = xsimd::hadd((a0 + a1) + (a2 + a3));
    for (; i < n; ++i) s += x[i];
    return s;
}
inline float max(const float* x, std::int64_t n) {
    float m = -std::numeric_limits<float>::infinity();
    std::int64_t i = 0;
    if (n >= lanes) {
        fbatch a(m), bad(0.0f);
        for (; i + lanes <= n; i += lanes) {
            const auto v = fbatch::load_unaligned(x + i);
            a = xsimd::max(a, v);
            bad = bad + xsimd::select(xsimd::isnan(v), fbatch(1.0f), fbatch(0.0f));
        }
        if (xsimd::hadd(bad) > 0) return std::numeric_limits<float>::quiet_NaN();
        alignas(64) float t[lanes];
        a.store_aligned(t);
        for (auto v : t) m = std::max(m, v);
    }
    for (; i < n; ++i) {
        if (std::isnan(x[i])) return x[i];
        m = std::max(m, x[i]);
    }
    return m;
}
inline float min(const float* x, std::int64_t n) {
    float m = std::numeric_limits<float>::infinity();
    std::int64_t i = 0;
    if (n >= lanes) {
        fbatch a(m), bad(0.0f);
        for (; i + lanes <= n; i += lanes) {
            const auto v = fbatch::load_unaligned(x + i);
            a = xsimd::min(a, v);
            bad = bad + xsimd::select(xsimd::isnan(v), fbatch(1.0f), fbatch(0.0f));
        }
        if (xsimd::hadd(bad) > 0) return std::numeric_limits<float>::quiet_NaN();
        alignas(64) float t[lanes];
        a.store_aligned(t);
        for (auto v : t) m = std::min(m, v);
    }
    for (; i < n; ++i) {
        if (std::isnan(x[i])) return x[i];
        m = std::min(m, x[i]);
    }
    return m;
}

// The first i < n with x[i] == v, or n.
inline std::int64_t first_equal(const float* x, std::int64_t n, float v) {
    std::int64_t i = 0;
    for (; i + lanes <= n; i += lanes)
        if (xsimd::any(fbatch::load_unaligned(x + i) == fbatch(v))) break;
    for (; i < n; ++i)
        if (x[i] == v) return i;
    return n;
}

// A contiguous row reduced: how the reduce kernel (kernels::reduce_float) and the
// fused kernel's row groups both reduce a row, so that they agree bit for bit.
inline float reduce(reducer r, const float* x, std::int64_t n) {
    return r == reducer::sum ? sum(x, n) : r == reducer::max ? max(x, n) : min(x, n);
}

// y[i] op= x[i] over [0, n): the column-wise step of a reduction over an outer axis.
inline void accumulate(int reduction /*0 sum, 1 max, 2 min*/, const float* x, float* y, std::int64_t n) {
    if (reduction == 0) binary(op::add, y, x, y, n);
    else binary(reduction == 1 ? op::max : op::min, y, x, y, n);
}

}  // namespace scribe::cpu::simd

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
