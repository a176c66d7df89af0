// scribe/cpu/simd/q8_q8.hpp — products of q8 weights with q8 inputs, in integers.
//
// A product with a q8 weight reads its input quantized in blocks of 32 and read
// back, x = qx * dx (ops/quantize.hpp's quantize_input, llama.cpp's Q8_0 inputs),
// so y[j] = sum over blocks b of (dx[b] * dw[j][b]) * (sum over the block of
// qx * qw[j]): an int8 x int8 sum per block, one f32 multiply-add per block.
//
// q8_input_of recovers qx and dx from the f32 values the graph computed, and says
// whether they are exactly such an input (every element equal to q * d of its
// block, d an f16 value); only then do the integer kernels run, so their results
// are the graph's up to the order of the f32 additions. With AVX-512 VNNI one
// vpdpbusd multiplies 64 pairs: |qx| (unsigned) times qw with qx's sign.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "convert.hpp"

namespace scribe::cpu::simd {

namespace detail {

// Blocks [0, n) of 32 values of x quantized and read back as ops/quantize.hpp's
// quantize_input does, element for element (the nodes' arithmetic, in order):
// d = max |x| / 127, v = x * (d == 0 ? 0 : 1 / d), q = round(v) half away from
// zero (0 where v is not finite), held as int8, out = q * f32(f16(d)). A block
// holding a NaN gives NaNs, as the nodes do.
inline void q8_read_back_portable(const float* x, std::int64_t n, float* out) {
    for (std::int64_t b = 0; b < n; ++b) {
        const float* v = x + b * 32;
        float amax = 0.0f;
        bool nan = false;
        for (int i = 0; i < 32; ++i) {
            amax = std::max(amax, std::fabs(v[i]));
            nan = nan || std::isnan(v[i]);
        }
        if (nan) amax = std::numeric_limits<float>::quiet_NaN();
        const float d = amax / 127.0f;
        const float id = d == 0.0f ? 0.0f : 1.0f / d;
        const float d16 = f16_bits_to_f32(f32_to_f16_bits(d));
        for (int i = 0; i < 32; ++i) {
            const float a = std::fabs(v[i] * id), f = std::floor(a);
            const float q = a < std::numeric_limits<float>::infinity() ? std::copysign(f + std::floor((a - f) * 2.0f), v[i] * id) : 0.0f;
            out[b * 32 + i] = static_cast<float>(static_cast<std::int8_t>(q)) * d16;
        }
    }
}

}  // namespace detail

// qx[0:k] and dx[0:k/32] from x[0:k] when x is a q8 input: per block, d = the
// f16 value nearest max |x| / 127, qx = x / d, and every x equal to qx * d in f32
// (as the graph made it: the largest element is +-127 d). False otherwise (x is
// then not on a grid of q8 blocks, or holds a NaN or an infinity).
inline bool q8_input_of(const float* x, std::int64_t k, std::int8_t* qx, float* dx) {
    for (std::int64_t b = 0; b < k / 32; ++b) {
        const float* v = x + b * 32;
        float amax = 0.0f;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(v[i]));
        const float d = f16_bits_to_f32(f32_to_f16_bits(amax / 127.0f));
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        bool same = std::isfinite(d);
        for (int i = 0; i < 32; ++i) {
            const float q = std::clamp(std::nearbyint(v[i] * id), -127.0f, 127.0f);
            same = same && q * d == v[i];
            qx[b * 32 + i] = static_cast<std::int8_t>(same ? q : 0.0f);
        }
        if (!same) return false;
        dx[b] = d;
    }
    return true;
}

namespace detail {

// y[j] for rows [0, n) of W (q[n][k], scale[n][k / 32] f16 bits) and the input qx, dx.
inline void q8_q8_dots_portable(std::int64_t n, std::int64_t k, const std::int8_t* qx, const float* dx, const std::int8_t* q,
                                const std::uint16_t* scale, float* y) {
    const auto blocks = k / 32;
    for (std::int64_t j = 0; j < n; ++j) {
        float acc = 0.0f;
        for (std::int64_t b = 0; b < blocks; ++b) {
            std::int32_t sum = 0;
            for (int i = 0; i < 32; ++i) sum += std::int32_t{qx[b * 32 + i]} * std::int32_t{q[j * k + b * 32 + i]};
            acc += static_cast<float>(sum) * (dx[b] * f16_bits_to_f32(scale[j * blocks + b]));
        }
        y[j] = acc;
    }
}

#ifdef SCRIBE_X86
#if defined(__GNUC__) && !defined(__clang__)  // GCC's false positive inside its own intrinsics; Clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
// The same arithmetic, sixteen lanes at a time (a block is two vectors).
__attribute__((target("avx512f"))) inline __m512 q8_read_back_avx512(__m512 v, float id, float d16) {
    const __m512 x = _mm512_mul_ps(v, _mm512_set1_ps(id));
    const __m512 a = _mm512_abs_ps(x);
    const __m512 f = _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m512 up = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_sub_ps(a, f), _mm512_set1_ps(2.0f)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __mmask16 finite = _mm512_cmp_ps_mask(a, _mm512_set1_ps(std::numeric_limits<float>::infinity()), _CMP_LT_OQ);
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(static_cast<int>(0x80000000u)));
    const __m512 q = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(_mm512_add_ps(f, up)), sign));
    // + 0 makes a -0 the 0 an int8 holds; other values are whole numbers and stay.
    return _mm512_mul_ps(_mm512_maskz_add_ps(finite, q, _mm512_setzero_ps()), _mm512_set1_ps(d16));
}

__attribute__((target("avx512f"))) inline void q8_read_back_blocks_avx512(const float* x, std::int64_t n, float* out) {
    for (std::int64_t b = 0; b < n; ++b) {
        const __m512 v0 = _mm512_loadu_ps(x + b * 32), v1 = _mm512_loadu_ps(x + b * 32 + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        if (_mm512_cmp_ps_mask(v0, v0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v1, v1, _CMP_UNORD_Q)) amax = std::numeric_limits<float>::quiet_NaN();
        const float d = amax / 127.0f;
        const float id = d == 0.0f ? 0.0f : 1.0f / d;
        const float d16 = f16_bits_to_f32(f32_to_f16_bits(d));
        _mm512_storeu_ps(out + b * 32, q8_read_back_avx512(v0, id, d16));
        _mm512_storeu_ps(out + b * 32 + 16, q8_read_back_avx512(v1, id, d16));
    }
}

// Whether this CPU runs AVX-512 VNNI with BW and VL (asked once).
inline bool has_avx512_vnni() {
    static const bool yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                                       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"));
    return yes;
}

// Lanes 0-7 of the result are s[2t], lanes 8-15 s[2t + 1]: the scales of the two
// blocks a 64-byte vector holds.
__attribute__((target("avx512f"))) inline __m512i block_pair_index(int t) {
    return _mm512_set_epi32(2 * t + 1, 2 * t + 1, 2 * t + 1, 2 * t + 1, 2 * t + 1, 2 * t + 1, 2 * t + 1, 2 * t + 1, 2 * t, 2 * t,
                            2 * t, 2 * t, 2 * t, 2 * t, 2 * t, 2 * t);
}

// The mask of the bytes of vector v of a row of `blocks` blocks (the last one half when blocks is odd).
inline __mmask64 q8_vector_mask(std::int64_t v, std::int64_t blocks) {
    return 2 * v + 1 < blocks ? ~__mmask64{0} : __mmask64{0xffffffffu};
}

// Vector v of a row (two blocks) times the input's: 16 int32 sums (8 per block)
// as f32, times the pair's scales.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) inline __m512 q8_q8_vector(const std::int8_t* row, std::int64_t v,
                                                                                        std::int64_t blocks, const std::int8_t* magnitude,
                                                                                        __mmask64 negative, __m512 scales) {
    // A whole vector loads plainly (a masked byte load costs several times more on Zen 4 and 5).
    const __m512i w = 2 * v + 1 < blocks ? _mm512_loadu_si512(row + 64 * v) : _mm512_maskz_loadu_epi8(q8_vector_mask(v, blocks), row + 64 * v);
    const __m512i signed_w = _mm512_mask_sub_epi8(w, negative, _mm512_setzero_si512(), w);
    const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_load_si512(magnitude + 64 * v), signed_w);
    return _mm512_mul_ps(_mm512_cvtepi32_ps(sums), scales);
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) inline void q8_q8_dots_avx512(std::int64_t n, std::int64_t k,
                                                                                            const std::int8_t* qx, const float* dx,
                                                                                            const std::int8_t* q,
                                                                                            const std::uint16_t* scale, float* y) {
    const auto blocks = k / 32, vecs = (blocks + 1) / 2;
    // The input's 64-byte vectors: |qx| as unsigned bytes, and the lanes where qx < 0.
    aligned_vector<std::int8_t> magnitude(static_cast<std::size_t>(64 * vecs));
    std::vector<__mmask64> negative(static_cast<std::size_t>(vecs));
    for (std::int64_t v = 0; v < vecs; ++v) {
        const __m512i x = _mm512_maskz_loadu_epi8(q8_vector_mask(v, blocks), qx + 64 * v);
        _mm512_store_si512(magnitude.data() + 64 * v, _mm512_abs_epi8(x));
        negative[static_cast<std::size_t>(v)] = _mm512_movepi8_mask(x);
    }
    __m512i pair[8];
    for (int t = 0; t < 8; ++t) pair[t] = block_pair_index(t);
    for (std::int64_t j = 0; j < n; ++j) {
        const std::int8_t* row = q + j * k;
        const std::uint16_t* sr = scale + j * blocks;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (std::int64_t v0 = 0; v0 < vecs; v0 += 8) {  // 16 blocks: their scales are one vector
            const auto nb = std::min<std::int64_t>(16, blocks - 2 * v0);
            const auto sm = static_cast<__mmask16>((1u << nb) - 1u);
            const __m512 s = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(sm, sr + 2 * v0)), _mm512_maskz_loadu_ps(sm, dx + 2 * v0));
            const auto nv = std::min<std::int64_t>(8, vecs - v0);
            std::int64_t t = 0;
            for (; t + 2 <= nv; t += 2) {
                const auto v = v0 + t;
                a0 = _mm512_add_ps(a0, q8_q8_vector(row, v, blocks, magnitude.data(), negative[static_cast<std::size_t>(v)],
                                                    _mm512_permutexvar_ps(pair[t], s)));
                a1 = _mm512_add_ps(a1, q8_q8_vector(row, v + 1, blocks, magnitude.data(), negative[static_cast<std::size_t>(v + 1)],
                                                    _mm512_permutexvar_ps(pair[t + 1], s)));
            }
            if (t < nv)
                a0 = _mm512_add_ps(a0, q8_q8_vector(row, v0 + t, blocks, magnitude.data(), negative[static_cast<std::size_t>(v0 + t)],
                                                    _mm512_permutexvar_ps(pair[t], s)));
        }
        y[j] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace detail

// Blocks [0, n) of 32 values of x quantized and read back as ops/quantize.hpp's
// quantize_input does (detail::q8_read_back_portable says how).
inline void q8_read_back_blocks(const float* x, std::int64_t n, float* out) {
#ifdef SCRIBE_X86
    if (detail::has_avx512f()) return detail::q8_read_back_blocks_avx512(x, n, out);
#endif
    detail::q8_read_back_portable(x, n, out);
}

// Whether q8_q8_dots runs integer SIMD here (AVX-512 VNNI); elsewhere the f32
// products of simd/q8.hpp are the faster way to the same values.
inline bool q8_q8_fast() {
#ifdef SCRIBE_X86
    return detail::has_avx512_vnni();
#else
    return false;
#endif
}

// y[0:n] = W[0:n] . x for W held as q[n][k], scale[n][k / 32] (f16 bits) and x
// as qx[k], dx[k / 32] (from q8_input_of).
inline void q8_q8_dots(std::int64_t n, std::int64_t k, const std::int8_t* qx, const float* dx, const std::int8_t* q,
                       const std::uint16_t* scale, float* y) {
#ifdef SCRIBE_X86
    if (detail::has_avx512_vnni()) return detail::q8_q8_dots_avx512(n, k, qx, dx, q, scale, y);
#endif
    detail::q8_q8_dots_portable(n, k, qx, dx, q, scale, y);
}

}  // namespace scribe::cpu::simd
