// scribe/cpu/simd/q8.hpp — 8-bit block weights (ops/quantize.hpp, llama.cpp's
// Q8_0): quantizing f32 rows into them, and the products that read them.
//
// A matrix W[n][k] is held as q (s8, row-major [n][k]) and scale (f16 bits,
// [n][k / 32]): W[j][i] = q[j][i] * scale[j][i / 32]. The products compute
// y[j] = sum over blocks b of scale[j][b] * (sum over the block of q * x), in f32,
// x in f32: the weight is exactly the graph's dequantized one and only the order
// of the f32 additions differs. A row streams 34 bytes per 32 weights (f32: 128),
// widened in registers (AVX-512 or AVX2, chosen at run time; portable loops
// elsewhere).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "convert.hpp"

namespace scribe::cpu::simd {

inline constexpr std::int64_t q8_block = 32;

// Quantizes rows [0, n) of w (row-major [n][k], k a multiple of 32) as llama.cpp's
// quantize_row_q8_0 does: per block, d = max |w| / 127 (in f32), q = round(w / d)
// (w * (1 / d), half away from zero), the scale stored as f16(d). Returns the
// first row holding a value that does not quantize (a NaN or an infinity, or a
// block whose scale overflows f16: |w| above 127 * 65504), or -1.
inline std::int64_t quantize_q8_rows(const float* w, std::int64_t n, std::int64_t k, std::int8_t* q, std::uint16_t* scale) {
    const auto blocks = k / q8_block;
    for (std::int64_t j = 0; j < n; ++j)
        for (std::int64_t b = 0; b < blocks; ++b) {
            const float* x = w + j * k + b * q8_block;
            float amax = 0.0f;
            for (std::int64_t i = 0; i < q8_block; ++i) amax = std::max(amax, std::fabs(x[i]));
            if (!std::isfinite(amax)) return j;
            for (std::int64_t i = 0; i < q8_block; ++i)
                if (std::isnan(x[i])) return j;
            const float d = amax / 127.0f;
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            const std::uint16_t h = f32_to_f16_bits(d);
            if ((h & 0x7c00u) == 0x7c00u) return j;
            scale[j * blocks + b] = h;
            for (std::int64_t i = 0; i < q8_block; ++i) {
                // |x * id| <= 127 up to rounding. A subnormal d makes id infinite
                // (the scale is then f16 zero): such values become 0, as ggml's
                // conversion of an infinity gives on x86 and gguf's NumPy does.
                const float v = std::round(x[i] * id);
                q[j * k + b * q8_block + i] = static_cast<std::int8_t>(std::isfinite(v) ? std::clamp(v, -127.0f, 127.0f) : 0.0f);
            }
        }
    return -1;
}

namespace detail {

inline void dequantize_q8_portable(const std::int8_t* q, const std::uint16_t* scale, std::int64_t n, std::int64_t k, float* out) {
    const auto blocks = k / q8_block;
    for (std::int64_t j = 0; j < n; ++j)
        for (std::int64_t b = 0; b < blocks; ++b) {
            const float d = f16_bits_to_f32(scale[j * blocks + b]);
            for (std::int64_t i = 0; i < q8_block; ++i)
                out[j * k + b * q8_block + i] = static_cast<float>(q[j * k + b * q8_block + i]) * d;
        }
}

// Each row's scales are widened to f32 a stretch of blocks at a time, then broadcast.
inline constexpr std::int64_t q8_stretch = 64;  // blocks per stretch: 2048 weights of a row

inline void q8_dots_portable(std::int64_t n, std::int64_t k, const float* x, const std::int8_t* q, const std::uint16_t* scale,
                             float* y) {
    const auto blocks = k / q8_block;
    for (std::int64_t j = 0; j < n; ++j) {
        float acc = 0.0f;
        for (std::int64_t b = 0; b < blocks; ++b) {
            float t = 0.0f;
            for (std::int64_t i = 0; i < q8_block; ++i) t += static_cast<float>(q[j * k + b * q8_block + i]) * x[b * q8_block + i];
            acc += t * f16_bits_to_f32(scale[j * blocks + b]);
        }
        y[j] = acc;
    }
}

#ifdef SCRIBE_X86
#if defined(__GNUC__) && !defined(__clang__)  // GCC's false positive in its intrinsic headers (see gemv.hpp)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
// One row at a time, in memory order (the prefetchers follow one stream: rows of
// a few hundred bytes read four at a time streamed at 18 GB/s on Zen 5, one at a
// time at 25), two blocks a step into two accumulators; the row's scales widened
// to f32 first and broadcast from memory.
// Sixteen int8 as f32. (A function, not a lambda: a lambda does not inherit its
// enclosing function's target attribute, and without -mavx512f it cannot compile.)
__attribute__((target("avx512f"))) inline __m512 widen16_avx512(const std::int8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

__attribute__((target("avx512f"))) inline void q8_dots_avx512(std::int64_t n, std::int64_t k, const float* x, const std::int8_t* q,
                                                              const std::uint16_t* scale, float* y) {
    const auto blocks = k / q8_block;
    alignas(64) float s[q8_stretch];
    for (std::int64_t j = 0; j < n; ++j) {
        const std::int8_t* row = q + j * k;
        const std::uint16_t* sr = scale + j * blocks;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (std::int64_t b0 = 0; b0 < blocks; b0 += q8_stretch) {
            const auto nb = std::min(q8_stretch, blocks - b0);
            std::int64_t b = 0;
            for (; b + 16 <= nb; b += 16)
                _mm512_store_ps(s + b, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sr + b0 + b))));
            for (; b < nb; ++b) s[b] = f16_bits_to_f32(sr[b0 + b]);
            for (b = 0; b + 2 <= nb; b += 2) {
                const std::int8_t* p = row + (b0 + b) * q8_block;
                const float* xb = x + (b0 + b) * q8_block;
                const __m512 t0 =
                    _mm512_fmadd_ps(widen16_avx512(p + 16), _mm512_loadu_ps(xb + 16), _mm512_mul_ps(widen16_avx512(p), _mm512_loadu_ps(xb)));
                const __m512 t1 = _mm512_fmadd_ps(widen16_avx512(p + 48), _mm512_loadu_ps(xb + 48),
                                                  _mm512_mul_ps(widen16_avx512(p + 32), _mm512_loadu_ps(xb + 32)));
                a0 = _mm512_fmadd_ps(t0, _mm512_set1_ps(s[b]), a0);
                a1 = _mm512_fmadd_ps(t1, _mm512_set1_ps(s[b + 1]), a1);
            }
            if (b < nb) {
                const std::int8_t* p = row + (b0 + b) * q8_block;
                const float* xb = x + (b0 + b) * q8_block;
                const __m512 t0 =
                    _mm512_fmadd_ps(widen16_avx512(p + 16), _mm512_loadu_ps(xb + 16), _mm512_mul_ps(widen16_avx512(p), _mm512_loadu_ps(xb)));
                a0 = _mm512_fmadd_ps(t0, _mm512_set1_ps(s[b]), a0);
            }
        }
        y[j] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}

__attribute__((target("avx512f"))) inline void dequantize_q8_avx512(const std::int8_t* q, const std::uint16_t* scale, std::int64_t n,
                                                                    std::int64_t k, float* out) {
    const auto blocks = n * (k / q8_block);  // rows are whole blocks: one run of blocks
    for (std::int64_t b = 0; b < blocks; ++b) {
        const __m512 d = _mm512_set1_ps(f16_bits_to_f32(scale[b]));
        const std::int8_t* p = q + b * q8_block;
        float* o = out + b * q8_block;
        _mm512_storeu_ps(o, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))), d));
        _mm512_storeu_ps(o + 16,
                         _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)))), d));
    }
}

__attribute__((target("avx2,fma,f16c"))) inline void dequantize_q8_avx2(const std::int8_t* q, const std::uint16_t* scale, std::int64_t n,
                                                                        std::int64_t k, float* out) {
    const auto blocks = n * (k / q8_block);
    for (std::int64_t b = 0; b < blocks; ++b) {
        const __m256 d = _mm256_set1_ps(f16_bits_to_f32(scale[b]));
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u)
            _mm256_storeu_ps(out + b * q8_block + 8 * u,
                             _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                                               _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + b * q8_block + 8 * u)))),
                                           d));
    }
}

// AVX2: four rows a pass, each load of x serving four rows.
template <int R>
__attribute__((target("avx2,fma,f16c"))) inline void q8_dots_pass_avx2(std::int64_t k, const float* x, const std::int8_t* q,
                                                                       const std::uint16_t* scale, float* y) {
    const auto blocks = k / q8_block;
    alignas(32) float s[R][q8_stretch];
    __m256 acc[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    for (std::int64_t b0 = 0; b0 < blocks; b0 += q8_stretch) {
        const auto nb = std::min(q8_stretch, blocks - b0);
        for (int r = 0; r < R; ++r) {
            std::int64_t b = 0;
            for (; b + 8 <= nb; b += 8)
                _mm256_store_ps(s[r] + b, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scale + r * blocks + b0 + b))));
            for (; b < nb; ++b) s[r][b] = f16_bits_to_f32(scale[r * blocks + b0 + b]);
        }
        for (std::int64_t b = 0; b < nb; ++b) {
            const auto at = (b0 + b) * q8_block;
            __m256 xs[4];
#pragma GCC unroll 4
            for (int u = 0; u < 4; ++u) xs[u] = _mm256_loadu_ps(x + at + 8 * u);
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) {
                const std::int8_t* p = q + r * k + at;
                __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))), xs[0]);
#pragma GCC unroll 3
                for (int u = 1; u < 4; ++u)
                    t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8 * u)))),
                                        xs[u], t);
                acc[r] = _mm256_fmadd_ps(t, _mm256_set1_ps(s[r][b]), acc[r]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) y[r] = hsum8_avx2(acc[r]);
}

__attribute__((target("avx2,fma,f16c"))) inline void q8_dots_avx2(std::int64_t n, std::int64_t k, const float* x, const std::int8_t* q,
                                                                  const std::uint16_t* scale, float* y) {
    const auto blocks = k / q8_block;
    std::int64_t j = 0;
    for (; j + 4 <= n; j += 4) q8_dots_pass_avx2<4>(k, x, q + j * k, scale + j * blocks, y + j);
    for (; j < n; ++j) q8_dots_pass_avx2<1>(k, x, q + j * k, scale + j * blocks, y + j);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace detail

// W's rows [0, n) as f32 (row-major [n][k]): the weight the graph reads.
inline void dequantize_q8_rows(const std::int8_t* q, const std::uint16_t* scale, std::int64_t n, std::int64_t k, float* out) {
#ifdef SCRIBE_X86
    if (detail::has_avx512f()) return detail::dequantize_q8_avx512(q, scale, n, k, out);
    if (detail::has_avx2_fma_f16c()) return detail::dequantize_q8_avx2(q, scale, n, k, out);
#endif
    detail::dequantize_q8_portable(q, scale, n, k, out);
}

// y[0:n] = W[0:n] . x[0:k] for W held as q[n][k] and scale[n][k / 32] (f16 bits).
inline void q8_dots(std::int64_t n, std::int64_t k, const float* x, const std::int8_t* q, const std::uint16_t* scale, float* y) {
#ifdef SCRIBE_X86
    if (detail::has_avx512f()) return detail::q8_dots_avx512(n, k, x, q, scale, y);
    if (detail::has_avx2_fma_f16c()) return detail::q8_dots_avx2(n, k, x, q, scale, y);
#endif
    detail::q8_dots_portable(n, k, x, q, scale, y);
}

}  // namespace scribe::cpu::simd
