// scribe/cpu/simd/gemv.hpp — the decode-shaped product: y[m] = sum_k x[k] * W[k, m]
// with W row-major (row stride ldw) holding f32, f16 or bf16 weights, accumulated
// in f32, on AVX-512 or AVX2 (chosen at run time; portable loops elsewhere).
// Memory-bound: W is streamed once, row by row, eight rows per pass so y is
// loaded and stored once per eight rows; 16-bit weights are widened in registers
// (f16 by vcvtph2ps, bf16 by a shift), so they stream half the bytes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "gemm_bf16.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace scribe::cpu::simd {

template <class W>
concept GemvWeight = std::is_same_v<W, float> || std::is_same_v<W, half> || std::is_same_v<W, bfloat16>;

namespace detail {

template <class W>
void gemv_rows_portable(std::int64_t m, std::int64_t k, const float* x, const W* w, std::int64_t ldw, float* y) {
    for (std::int64_t j = 0; j < m; ++j) y[j] = 0.0f;
    for (std::int64_t r = 0; r < k; ++r)
        for (std::int64_t j = 0; j < m; ++j) y[j] += x[r] * to_f32(w[r * ldw + j]);
}

#if defined(__x86_64__) || defined(__i386__)
// GCC 12 reports its own AVX-512 intrinsic headers (_mm512_undefined_* inside
// conversions, shifts and reductions) as (maybe-)uninitialized; the warning is false there.
#if defined(__GNUC__) && !defined(__clang__)  // GCC's false positive; Clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
// y[0:m] += sum over R rows r of x[r] * W[r, 0:m]: y is read and written once per
// R rows, two vectors of it at a time.
template <int R, class W>
__attribute__((target("avx512f"))) inline void gemv_pass_avx512(std::int64_t m, const float* x, const W* w,
                                                                std::int64_t ldw, float* y) {
    __m512 xs[R];
    const W* ws[R];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
        xs[i] = _mm512_set1_ps(x[i]);
        ws[i] = w + i * ldw;
    }
    std::int64_t j = 0;
    for (; j + 32 <= m; j += 32) {
        __m512 a0 = _mm512_loadu_ps(y + j), a1 = _mm512_loadu_ps(y + j + 16);
#pragma GCC unroll 8
        for (int i = 0; i < R; ++i) {
            a0 = _mm512_fmadd_ps(xs[i], widen16_avx512(ws[i] + j), a0);
            a1 = _mm512_fmadd_ps(xs[i], widen16_avx512(ws[i] + j + 16), a1);
        }
        _mm512_storeu_ps(y + j, a0);
        _mm512_storeu_ps(y + j + 16, a1);
    }
    for (; j + 16 <= m; j += 16) {
        __m512 a = _mm512_loadu_ps(y + j);
#pragma GCC unroll 8
        for (int i = 0; i < R; ++i) a = _mm512_fmadd_ps(xs[i], widen16_avx512(ws[i] + j), a);
        _mm512_storeu_ps(y + j, a);
    }
    for (; j < m; ++j) {
        float acc = y[j];
        for (int i = 0; i < R; ++i) acc += x[i] * to_f32(ws[i][j]);
        y[j] = acc;
    }
}

// Eight rows per pass (measured on Zen 4: eight streams of W keep the memory
// busier than four, and y's traffic halves; sixteen is slower again).
template <class W>
__attribute__((target("avx512f"))) void gemv_rows_avx512(std::int64_t m, std::int64_t k, const float* x,
                                                         const W* w, std::int64_t ldw, float* y) {
    for (std::int64_t j = 0; j < m; ++j) y[j] = 0.0f;
    std::int64_t r = 0;
    for (; r + 8 <= k; r += 8) gemv_pass_avx512<8>(m, x + r, w + r * ldw, ldw, y);
    for (; r < k; ++r) gemv_pass_avx512<1>(m, x + r, w + r * ldw, ldw, y);
}
// The sums of sixteen vectors in one: lane r holds the sum of a[r]'s lanes.
// A transposing tree of 15 adds (and their shuffles) instead of 16 separate
// horizontal sums, which cost as much as the dot of a short row itself.
__attribute__((target("avx512f"))) inline __m512 sum16_avx512(const __m512* a) {
    __m512 b[8], c[4], d[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i)  // 256-bit halves: [a0 lo + a0 hi, a1 lo + a1 hi]
        b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44), _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xEE));
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i)  // 128-bit quarters: one per row 4i..4i+3
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88), _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xDD));
#pragma GCC unroll 2
    for (int i = 0; i < 2; ++i) d[i] = _mm512_add_ps(_mm512_unpacklo_ps(c[2 * i], c[2 * i + 1]), _mm512_unpackhi_ps(c[2 * i], c[2 * i + 1]));
    const __m512d d0 = _mm512_castps_pd(d[0]), d1 = _mm512_castps_pd(d[1]);
    const __m512 s = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(d0, d1)), _mm512_castpd_ps(_mm512_unpackhi_pd(d0, d1)));
    // Quarter q of s holds rows q, 4 + q, 8 + q, 12 + q: put row r in lane r.
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), s);
}

// The dots of W's rows (along k) with R vectors x[r], one row at a time, rows
// read strictly in memory order; each group of sixteen rows' sums reduced together
// (sum16_avx512) and stored as one vector per x row. `row_dots(row, sums, tails)`
// sets sums[r] to a vector whose lanes add up to the row's dot with x[r] (plus
// tails[r], a scalar part). Measured on Zen 4 (rows of 768, through 2 MiB
// pages): one row at a time streams at 27 GB/s in f32 and 22-30 GB/s in
// f16/bf16, two to eight interleaved rows at 12-20 GB/s: the prefetchers follow
// one stream, not several short ones.
template <int R, class W, class RowDots>
__attribute__((target("avx512f"))) inline void dots_in_groups_avx512(std::int64_t m, const W* w, std::int64_t ldw,
                                                                     float* const* y, const RowDots& row_dots) {
    for (std::int64_t n0 = 0; n0 < m; n0 += 16) {
        const int rows = static_cast<int>(std::min<std::int64_t>(16, m - n0));
        __m512 sums[R][16];
        float tails[R][16] = {};
        for (int i = 0; i < 16; ++i) {
            __m512 s[R];
            float t[R] = {};
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) s[r] = _mm512_setzero_ps();
            if (i < rows) row_dots(w + (n0 + i) * ldw, s, t);
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) sums[r][i] = s[r], tails[r][i] = t[r];
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r)
            _mm512_mask_storeu_ps(y[r] + n0, static_cast<__mmask16>((1u << rows) - 1),
                                  _mm512_add_ps(sum16_avx512(sums[r]), _mm512_loadu_ps(tails[r])));
    }
}

// The lines 2 KiB and 8 KiB past p (a weight row's stream, rows one after
// another) asked for now: the near one into L1, the far one into L2 only. One
// core's hardware prefetchers alone kept a bf16 or f16 stream at 11.5 GB/s out of
// main memory on a Sapphire-Rapids-class Xeon, where f32 rows, twice as long,
// reached 15.5 (its measured read bandwidth); 2-4 KiB ahead into L1 brought the
// 16-bit rows to 15.2-15.5 there. On an Emerald Rapids VM (read bandwidth 16.1
// GB/s) that L1 prefetch alone left f16 and bf16 rows at 13.4-14.6 GB/s: each
// line held a fill buffer for a whole trip to memory. With the far L2 prefetch,
// which frees the fill buffers sooner, 16.2-17.1 (a 77 MB LM head and 57 MB of
// FFN rows, evicted first, `/tmp` program, best of 5, two alternating rounds; 4
// KiB or 12 KiB ahead, or the L1 prefetch at 512 B or 1 KiB, did no better).
inline void prefetch_ahead(const void* p) {
    __builtin_prefetch(static_cast<const char*>(p) + 2048, 0, 3);
    __builtin_prefetch(static_cast<const char*>(p) + 8192, 0, 2);
}

// A row's dots with f32 x rows, the weights widened: four accumulators for one x
// row, two for several.
template <int R, class W>
struct widened_row_dots {
    std::int64_t k;
    const float* const* x;
    __attribute__((target("avx512f"))) void operator()(const W* row, __m512* sums, float* tails) const {
        std::int64_t j = 0;
        if constexpr (R == 1) {
            __m512 acc[4];
#pragma GCC unroll 4
            for (int u = 0; u < 4; ++u) acc[u] = _mm512_setzero_ps();
            for (; j + 64 <= k; j += 64)
#pragma GCC unroll 4
                for (int u = 0; u < 4; ++u) {
                    if (sizeof(W) == 4 || u % 2 == 0) prefetch_ahead(row + j + 16 * u);  // each 64-byte line once
                    acc[u] = _mm512_fmadd_ps(widen16_avx512(row + j + 16 * u), _mm512_loadu_ps(x[0] + j + 16 * u), acc[u]);
                }
            sums[0] = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        } else {
            __m512 acc[R][2];
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
            for (; j + 32 <= k; j += 32) {
                prefetch_ahead(row + j);
                if constexpr (sizeof(W) == 4) prefetch_ahead(row + j + 16);
                const __m512 w0 = widen16_avx512(row + j), w1 = widen16_avx512(row + j + 16);
#pragma GCC unroll 4
                for (int r = 0; r < R; ++r) {
                    acc[r][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[r] + j), acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x[r] + j + 16), acc[r][1]);
                }
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) sums[r] = _mm512_add_ps(acc[r][0], acc[r][1]);
        }
        for (; j + 16 <= k; j += 16) {
            const __m512 w0 = widen16_avx512(row + j);
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) sums[r] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[r] + j), sums[r]);
        }
        for (; j < k; ++j)
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) tails[r] += to_f32(row[j]) * x[r][j];
    }
};

// A bf16 row's dots with bf16 x rows (a bf16 model's activations): vdpbf16ps
// takes 32 weights and 32 x values a vector, one instruction where widening
// both took five, which lets one core stream a bf16 W at its read bandwidth.
// Each pair of bf16 products is exact in f32, as in the widening kernel; the
// sums differ only in their order (and vdpbf16ps flushes subnormals to zero).
template <int R>
struct bf16_row_dots {
    std::int64_t k;
    const bfloat16* const* x;
    __attribute__((target("avx512f,avx512bf16"))) void operator()(const bfloat16* row, __m512* sums, float* tails) const {
        constexpr int U = R == 1 ? 2 : 1;  // accumulators per x row
        __m512 acc[R][U];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
            for (int u = 0; u < U; ++u) acc[r][u] = _mm512_setzero_ps();
        std::int64_t j = 0;
        for (; j + 32 * U <= k; j += 32 * U)
#pragma GCC unroll 2
            for (int u = 0; u < U; ++u) {
                prefetch_ahead(row + j + 32 * u);
                const auto wv = (__m512bh)_mm512_loadu_si512(row + j + 32 * u);
#pragma GCC unroll 4
                for (int r = 0; r < R; ++r) acc[r][u] = _mm512_dpbf16_ps(acc[r][u], wv, (__m512bh)_mm512_loadu_si512(x[r] + j + 32 * u));
            }
        for (; j + 32 <= k; j += 32) {
            const auto wv = (__m512bh)_mm512_loadu_si512(row + j);
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) acc[r][0] = _mm512_dpbf16_ps(acc[r][0], wv, (__m512bh)_mm512_loadu_si512(x[r] + j));
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            sums[r] = acc[r][0];
            if constexpr (U == 2) sums[r] = _mm512_add_ps(acc[r][0], acc[r][1]);
        }
        for (; j < k; ++j)
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) tails[r] += to_f32(row[j]) * to_f32(x[r][j]);
    }
};

template <class W>
__attribute__((target("avx512f"))) void gemv_dots_avx512(std::int64_t m, std::int64_t k, const float* x, const W* w,
                                                         std::int64_t ldw, float* y) {
    dots_in_groups_avx512<1>(m, w, ldw, &y, widened_row_dots<1, W>{k, &x});
}
__attribute__((target("avx512f,avx512bf16"))) inline void gemv_dots_bf16_avx512(std::int64_t m, std::int64_t k,
                                                                                const bfloat16* x, const bfloat16* w,
                                                                                std::int64_t ldw, float* y) {
    dots_in_groups_avx512<1>(m, w, ldw, &y, bf16_row_dots<1>{k, &x});
}

// A few rows x[0..R) against one W, W streamed once for all of them (batched
// decode's products: each row through gemv_rows/gemv_dots alone read W R times).
// y[r][0:m] += sum over T rows t of x[r][t] * W[t, 0:m]: each strip of y read and
// written once per pass.
template <int R, int T, class W>
__attribute__((target("avx512f"))) inline void gemv_pass_multi_avx512(std::int64_t m, const float* const* x, std::int64_t i,
                                                                      const W* w, std::int64_t ldw, float* const* y) {
    __m512 xs[R][T];
    const W* ws[T];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
        ws[t] = w + (i + t) * ldw;
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) xs[r][t] = _mm512_set1_ps(x[r][i + t]);
    }
    std::int64_t j = 0;
    for (; j + 16 <= m; j += 16) {
        __m512 acc[R];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[r] = _mm512_loadu_ps(y[r] + j);
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
            const __m512 wv = widen16_avx512(ws[t] + j);
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(xs[r][t], wv, acc[r]);
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) _mm512_storeu_ps(y[r] + j, acc[r]);
    }
    for (; j < m; ++j)
        for (int r = 0; r < R; ++r) {
            float acc = y[r][j];
            for (int t = 0; t < T; ++t) acc += x[r][i + t] * to_f32(ws[t][j]);
            y[r][j] = acc;
        }
}
// y[r][0:m] = x[r][0:k] . W[0:k, 0:m] (W row-major along m, row stride ldw):
// passes of four W rows (R x 4 broadcasts, R accumulators: within 32 registers).
template <int R, class W>
__attribute__((target("avx512f"))) void gemv_rows_multi_avx512(std::int64_t m, std::int64_t k, const float* const* x,
                                                               const W* w, std::int64_t ldw, float* const* y) {
    for (int r = 0; r < R; ++r)
        for (std::int64_t j = 0; j < m; ++j) y[r][j] = 0.0f;
    std::int64_t i = 0;
    for (; i + 4 <= k; i += 4) gemv_pass_multi_avx512<R, 4>(m, x, i, w, ldw, y);
    for (; i < k; ++i) gemv_pass_multi_avx512<R, 1>(m, x, i, w, ldw, y);
}
// y[r][0:m] = W[0:m, 0:k] . x[r][0:k] (W's rows along k): each W row read once, its
// dot with every x row summed in registers.
template <int R, class W>
__attribute__((target("avx512f"))) void gemv_dots_multi_avx512(std::int64_t m, std::int64_t k, const float* const* x,
                                                               const W* w, std::int64_t ldw, float* const* y) {
    dots_in_groups_avx512<R>(m, w, ldw, y, widened_row_dots<R, W>{k, x});
}
template <int R>
__attribute__((target("avx512f,avx512bf16"))) void gemv_dots_multi_bf16_avx512(std::int64_t m, std::int64_t k,
                                                                                const bfloat16* const* x, const bfloat16* w,
                                                                                std::int64_t ldw, float* const* y) {
    dots_in_groups_avx512<R>(m, w, ldw, y, bf16_row_dots<R>{k, x});
}

// The same two products on AVX2 + FMA (+ F16C for f16 weights), eight lanes a
// vector: CPUs without AVX-512 (Zen 3, say). Without them the portable loops run:
// gemv_dots_portable's sum is a strict-order scalar chain, and 16-bit weights are
// converted one element at a time (an f16 product then reads 0.3-0.5 GB/s).
template <int R, class W>
__attribute__((target("avx2,fma,f16c"))) inline void gemv_pass_avx2(std::int64_t m, const float* x, const W* w,
                                                                   std::int64_t ldw, float* y) {
    __m256 xs[R];
    const W* ws[R];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
        xs[i] = _mm256_set1_ps(x[i]);
        ws[i] = w + i * ldw;
    }
    std::int64_t j = 0;
    for (; j + 16 <= m; j += 16) {
        __m256 a0 = _mm256_loadu_ps(y + j), a1 = _mm256_loadu_ps(y + j + 8);
#pragma GCC unroll 8
        for (int i = 0; i < R; ++i) {
            a0 = _mm256_fmadd_ps(xs[i], widen8_avx2(ws[i] + j), a0);
            a1 = _mm256_fmadd_ps(xs[i], widen8_avx2(ws[i] + j + 8), a1);
        }
        _mm256_storeu_ps(y + j, a0);
        _mm256_storeu_ps(y + j + 8, a1);
    }
    for (; j + 8 <= m; j += 8) {
        __m256 a = _mm256_loadu_ps(y + j);
#pragma GCC unroll 8
        for (int i = 0; i < R; ++i) a = _mm256_fmadd_ps(xs[i], widen8_avx2(ws[i] + j), a);
        _mm256_storeu_ps(y + j, a);
    }
    for (; j < m; ++j) {
        float acc = y[j];
        for (int i = 0; i < R; ++i) acc += x[i] * to_f32(ws[i][j]);
        y[j] = acc;
    }
}

template <class W>
__attribute__((target("avx2,fma,f16c"))) void gemv_rows_avx2(std::int64_t m, std::int64_t k, const float* x, const W* w,
                                                             std::int64_t ldw, float* y) {
    for (std::int64_t j = 0; j < m; ++j) y[j] = 0.0f;
    std::int64_t r = 0;
    for (; r + 8 <= k; r += 8) gemv_pass_avx2<8>(m, x + r, w + r * ldw, ldw, y);
    for (; r < k; ++r) gemv_pass_avx2<1>(m, x + r, w + r * ldw, ldw, y);
}

// bf16 weights on Zen 1 (is_zen1), y = x . W along W's rows, in 128-bit vectors:
// its AVX2 runs on 128-bit units, and there widening bf16 by vpunpcklwd/vpunpckhwd
// with zero (which keep the order within a 128-bit register) costs half the
// 256-bit vpmovzxwd and shift. Measured on one Zen 1 core (12 GPT-2 FFN weights
// streamed, and in L2): 10.1-10.6 -> 13.9-14.2 GB/s (14.8 -> 25.7 in L2). (f16 the
// same way, by vcvtph2ps xmm, was slower than ymm: 8.7-9.0 against 10.6-11.3
// GB/s.) Eight weights widen to two vectors of four (widen8_sse, convert.hpp).
// The dots form's bf16 kernel is gemv_dots_bf16_avx2 below.
template <int R, class W>
__attribute__((target("avx2,fma,f16c"))) inline void gemv_pass_sse(std::int64_t m, const float* x, const W* w, std::int64_t ldw,
                                                                  float* y) {
    __m128 xs[R];
    const W* ws[R];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
        xs[i] = _mm_set1_ps(x[i]);
        ws[i] = w + i * ldw;
    }
    std::int64_t j = 0;
    for (; j + 16 <= m; j += 16) {
        __m128 a[4];
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) a[u] = _mm_loadu_ps(y + j + 4 * u);
#pragma GCC unroll 8
        for (int i = 0; i < R; ++i) {
            __m128 v[4];
            widen8_sse(ws[i] + j, v[0], v[1]);
            widen8_sse(ws[i] + j + 8, v[2], v[3]);
#pragma GCC unroll 4
            for (int u = 0; u < 4; ++u) a[u] = _mm_fmadd_ps(xs[i], v[u], a[u]);
        }
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) _mm_storeu_ps(y + j + 4 * u, a[u]);
    }
    for (; j < m; ++j) {
        float acc = y[j];
        for (int i = 0; i < R; ++i) acc += x[i] * to_f32(ws[i][j]);
        y[j] = acc;
    }
}

template <class W>
__attribute__((target("avx2,fma,f16c"))) void gemv_rows_sse(std::int64_t m, std::int64_t k, const float* x, const W* w, std::int64_t ldw,
                                                            float* y) {
    for (std::int64_t j = 0; j < m; ++j) y[j] = 0.0f;
    std::int64_t r = 0;
    for (; r + 8 <= k; r += 8) gemv_pass_sse<8>(m, x + r, w + r * ldw, ldw, y);
    for (; r < k; ++r) gemv_pass_sse<1>(m, x + r, w + r * ldw, ldw, y);
}

// bf16 W's rows (along k) dotted with an f32 x on AVX2, every CPU that has it
// (gemv_dots_avx2 below takes f32 and f16 weights): a 32-bit lane of W holds two bf16, the even
// element in its low half and the odd one in its high half, so the lane masked to
// its high half is the odd element as an f32 and shifted left by 16 the even one.
// Sixteen weights become two exact f32 vectors by one vpand and one vpslld, with
// no shuffle (gemv_dots_avx2 takes a vpmovzxwd and a shift for each eight; Zen 1's
// 128-bit kernel took two unpacks). x is laid out to match once per call, each
// sixteen values as the eight even ones then the eight odd ones (`xs`, k rounded
// down to 16). Each row's stream asks for its lines ahead (prefetch_ahead). On one
// Zen 1 core (/tmp program: 2 MiB pages, evicted first, best of 7, four rounds),
// against the 128-bit unpacking kernel this replaced there: 12 of GPT-2's FFN
// weights as decode reads them, 3072 rows of 768, 12.1-12.8 -> 16.6-17.2 GB/s, and
// 768 rows of 3072, 13.2-13.4 -> 14.2-15.5; its 50257 x 768 LM head 12.5-12.9 ->
// 16.6-17.6; f32 rows streamed at 16.1-16.9 in the same rounds.
// One step of gemv_dots_bf16_avx2: sixteen weights at w against xs's matching
// sixteen (even ones, then odd ones), into two accumulators. (A lambda inside the
// kernel would not take its target attribute: a build without -mavx2 refuses it.)
__attribute__((target("avx2,fma,f16c"))) inline void bf16_lane_split_step(const bfloat16* w, const float* xs, __m256& even,
                                                                         __m256& odd) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    even = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), _mm256_loadu_ps(xs), even);
    odd = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u)))),
                          _mm256_loadu_ps(xs + 8), odd);
}
__attribute__((target("avx2,fma,f16c"))) inline void gemv_dots_bf16_avx2(std::int64_t m, std::int64_t k, const float* x,
                                                                        const bfloat16* w, std::int64_t ldw, float* y) {
    const std::int64_t k16 = k / 16 * 16;
    thread_local aligned_vector<float> xs;
    xs.resize(static_cast<std::size_t>(k16));
    for (std::int64_t j = 0; j < k16; j += 16)
        for (int e = 0; e < 8; ++e) xs[static_cast<std::size_t>(j + e)] = x[j + 2 * e], xs[static_cast<std::size_t>(j + 8 + e)] = x[j + 2 * e + 1];
    const float* xp = xs.data();
    for (std::int64_t n = 0; n < m; ++n) {
        const bfloat16* row = w + n * ldw;
        __m256 acc[4];
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) acc[u] = _mm256_setzero_ps();
        std::int64_t j = 0;
        for (; j + 32 <= k16; j += 32) {
            prefetch_ahead(row + j);  // one 64-byte line a step
            bf16_lane_split_step(row + j, xp + j, acc[0], acc[1]);
            bf16_lane_split_step(row + j + 16, xp + j + 16, acc[2], acc[3]);
        }
        if (j < k16) bf16_lane_split_step(row + j, xp + j, acc[0], acc[1]), j += 16;
        float s = hsum8_avx2(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
        for (; j < k; ++j) s += to_f32(row[j]) * x[j];
        y[n] = s;
    }
}

// W's rows (along k) dotted with x, the weights widened (f16 by vcvtph2ps). A 16-bit
// row's stream asks for its lines ahead (prefetch_ahead): f16 on one Zen 1 core,
// 12 of GPT-2's FFN weights as decode reads them (3072 rows of 768) and its LM
// head, 11.8-11.9 -> 14.3-14.6 GB/s (/tmp program, 2 MiB pages, evicted first,
// best of 7, three rounds each). f32 rows streamed alike with or without.
template <class W>
__attribute__((target("avx2,fma,f16c"))) void gemv_dots_avx2(std::int64_t m, std::int64_t k, const float* x, const W* w,
                                                             std::int64_t ldw, float* y) {
    for (std::int64_t n = 0; n < m; ++n) {
        const W* row = w + n * ldw;
        __m256 acc[4];
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) acc[u] = _mm256_setzero_ps();
        std::int64_t j = 0;
        for (; j + 32 <= k; j += 32) {
            if constexpr (sizeof(W) == 2) prefetch_ahead(row + j);  // a step's 64-byte line
#pragma GCC unroll 4
            for (int u = 0; u < 4; ++u)
                acc[u] = _mm256_fmadd_ps(widen8_avx2(row + j + 8 * u), _mm256_loadu_ps(x + j + 8 * u), acc[u]);
        }
        for (; j + 8 <= k; j += 8) acc[0] = _mm256_fmadd_ps(widen8_avx2(row + j), _mm256_loadu_ps(x + j), acc[0]);
        float s = hsum8_avx2(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
        for (; j < k; ++j) s += to_f32(row[j]) * x[j];
        y[n] = s;
    }
}

// y[r][0:m] += x[r][i:i+P] . W[i:i+P, 0:m] for R rows: P rows of W streamed once
// (in address order, which the prefetchers follow; a strip down all of k would
// touch a new 4 KiB page at every step), y's rows updated in place.
template <int R, int P, class W>
__attribute__((target("avx2,fma,f16c"))) inline void gemv_pass_multi_avx2(std::int64_t m, const float* const* x, std::int64_t i,
                                                                         const W* w, std::int64_t ldw, float* const* y) {
    const W* ws[P];
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) ws[p] = w + (i + p) * ldw;
    std::int64_t j = 0;
    for (; j + 16 <= m; j += 16) {
        __m256 a0[R], a1[R];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) a0[r] = _mm256_loadu_ps(y[r] + j), a1[r] = _mm256_loadu_ps(y[r] + j + 8);
#pragma GCC unroll 4
        for (int p = 0; p < P; ++p) {
            _mm_prefetch(reinterpret_cast<const char*>(ws[p] + j + P * ldw), _MM_HINT_T0);  // the next pass's rows
            const __m256 w0 = widen8_avx2(ws[p] + j), w1 = widen8_avx2(ws[p] + j + 8);
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) {
                const __m256 xv = _mm256_broadcast_ss(x[r] + i + p);
                a0[r] = _mm256_fmadd_ps(xv, w0, a0[r]);
                a1[r] = _mm256_fmadd_ps(xv, w1, a1[r]);
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) _mm256_storeu_ps(y[r] + j, a0[r]), _mm256_storeu_ps(y[r] + j + 8, a1[r]);
    }
    for (; j < m; ++j)
        for (int r = 0; r < R; ++r) {
            float acc = y[r][j];
            for (int p = 0; p < P; ++p) acc += x[r][i + p] * to_f32(ws[p][j]);
            y[r][j] = acc;
        }
}
// y[r][0:m] = x[r][0:k] . W[0:k, 0:m] for R rows at once (W's rows along m), W read once.
template <int R, class W>
__attribute__((target("avx2,fma,f16c"))) void gemv_rows_multi_avx2(std::int64_t m, std::int64_t k, const float* const* x,
                                                                   const W* w, std::int64_t ldw, float* const* y) {
    for (int r = 0; r < R; ++r)
        for (std::int64_t j = 0; j < m; ++j) y[r][j] = 0.0f;
    std::int64_t i = 0;
    for (; i + 4 <= k; i += 4) gemv_pass_multi_avx2<R, 4>(m, x, i, w, ldw, y);
    for (; i < k; ++i) gemv_pass_multi_avx2<R, 1>(m, x, i, w, ldw, y);
}

// y[r][0:m] = W[0:m, 0:k] . x[r][0:k] for R rows at once (W's rows along k): each W
// row read once, its dots with every x row summed in registers.
template <int R, class W>
__attribute__((target("avx2,fma,f16c"))) void gemv_dots_multi_avx2(std::int64_t m, std::int64_t k, const float* const* x,
                                                                   const W* w, std::int64_t ldw, float* const* y) {
    for (std::int64_t n = 0; n < m; ++n) {
        const W* row = w + n * ldw;
        __m256 a0[R], a1[R];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) a0[r] = a1[r] = _mm256_setzero_ps();
        std::int64_t j = 0;
        for (; j + 16 <= k; j += 16) {
            const __m256 w0 = widen8_avx2(row + j), w1 = widen8_avx2(row + j + 8);
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) {
                a0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[r] + j), a0[r]);
                a1[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x[r] + j + 8), a1[r]);
            }
        }
        for (; j + 8 <= k; j += 8) {
            const __m256 w0 = widen8_avx2(row + j);
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) a0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[r] + j), a0[r]);
        }
        for (int r = 0; r < R; ++r) {
            float s = hsum8_avx2(_mm256_add_ps(a0[r], a1[r]));
            for (std::int64_t i = j; i < k; ++i) s += to_f32(row[i]) * x[r][i];
            y[r][n] = s;
        }
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

template <class W>
void gemv_dots_portable(std::int64_t m, std::int64_t k, const float* x, const W* w, std::int64_t ldw, float* y) {
    for (std::int64_t n = 0; n < m; ++n) {
        float s = 0;
        for (std::int64_t j = 0; j < k; ++j) s += to_f32(w[n * ldw + j]) * x[j];
        y[n] = s;
    }
}

}  // namespace detail

// y[0:m] = x[0:k] . W[0:k, 0:m], W row-major with row stride ldw.
template <GemvWeight W>
void sgemv_rows(std::int64_t m, std::int64_t k, const float* x, const W* w, std::int64_t ldw, float* y) {
#ifdef SCRIBE_X86
    if (detail::has_avx512f()) return detail::gemv_rows_avx512(m, k, x, w, ldw, y);
    if constexpr (std::is_same_v<W, bfloat16>)
        if (detail::has_avx2_fma_f16c() && detail::is_zen1()) return detail::gemv_rows_sse(m, k, x, w, ldw, y);
    if (detail::has_avx2_fma_f16c()) return detail::gemv_rows_avx2(m, k, x, w, ldw, y);
#endif
    detail::gemv_rows_portable(m, k, x, w, ldw, y);
}

// y[0:m] = W[0:m, 0:k] . x[0:k], W's rows contiguous along k with row stride ldw
// (a product with a transposed weight, e.g. the tied LM head x . wte^T).
template <GemvWeight W>
void sgemv_dots(std::int64_t m, std::int64_t k, const float* x, const W* w, std::int64_t ldw, float* y) {
#ifdef SCRIBE_X86
    if (detail::has_avx512f()) return detail::gemv_dots_avx512(m, k, x, w, ldw, y);
    if constexpr (std::is_same_v<W, bfloat16>)
        if (detail::has_avx2_fma_f16c()) return detail::gemv_dots_bf16_avx2(m, k, x, w, ldw, y);
    if (detail::has_avx2_fma_f16c()) return detail::gemv_dots_avx2(m, k, x, w, ldw, y);
#endif
    detail::gemv_dots_portable(m, k, x, w, ldw, y);
}

// y[0:m] = W[0:m, 0:k] . x[0:k] with x in bf16 as well: vdpbf16ps where the CPU
// has AVX512_BF16, else x widened once and sgemv_dots.
inline void sgemv_dots(std::int64_t m, std::int64_t k, const bfloat16* x, const bfloat16* w, std::int64_t ldw, float* y) {
#ifdef SCRIBE_X86
    if (detail::has_avx512bf16()) return detail::gemv_dots_bf16_avx512(m, k, x, w, ldw, y);
#endif
    std::vector<float> wide(static_cast<std::size_t>(k));
    for (std::int64_t j = 0; j < k; ++j) wide[static_cast<std::size_t>(j)] = to_f32(x[j]);
    sgemv_dots(m, k, wide.data(), w, ldw, y);
}

namespace detail {
// f(std::integral_constant<int, R>{}) for R = rows when 2 <= rows <= Max (the row
// counts the several-row kernels are compiled for: 4 with AVX-512, 6 with AVX2):
// true, or false for any other.
template <int Max = 4, class F>
bool with_rows(int rows, F&& f) {
    switch (rows) {
        case 2: return f(std::integral_constant<int, 2>{}), true;
        case 3: return f(std::integral_constant<int, 3>{}), true;
        case 4: return f(std::integral_constant<int, 4>{}), true;
        case 5: if constexpr (Max >= 5) return f(std::integral_constant<int, 5>{}), true; else return false;
        case 6: if constexpr (Max >= 6) return f(std::integral_constant<int, 6>{}), true; else return false;
        default: return false;
    }
}
}  // namespace detail

// Whether the products of several rows at once (sgemv_rows_multi, sgemv_dots_multi)
// have a kernel here (AVX-512, or AVX2 with FMA and F16C); without one, callers
// take the rows one at a time.
inline bool gemv_multi_available() {
#ifdef SCRIBE_X86
    return detail::has_avx512f() || detail::has_avx2_fma_f16c();
#else
    return false;
#endif
}
// The most rows those kernels take at once (0: none here).
inline int gemv_multi_rows() {
#ifdef SCRIBE_X86
    return detail::has_avx512f() ? 4 : detail::has_avx2_fma_f16c() ? 6 : 0;
#else
    return 0;
#endif
}

// The products of `rows` rows x[r] at once (2 <= rows <= gemv_multi_rows()), W
// read once; only where gemv_multi_available().
template <GemvWeight W>
void sgemv_rows_multi(int rows, std::int64_t m, std::int64_t k, const float* const* x, const W* w, std::int64_t ldw,
                      float* const* y) {
#ifdef SCRIBE_X86
    if (detail::has_avx512f() && detail::with_rows(rows, [&](auto r) { detail::gemv_rows_multi_avx512<r()>(m, k, x, w, ldw, y); })) return;
    if (detail::has_avx2_fma_f16c() && detail::with_rows<6>(rows, [&](auto r) { detail::gemv_rows_multi_avx2<r()>(m, k, x, w, ldw, y); })) return;
#endif
    throw error("sgemv_rows_multi: no kernel for " + std::to_string(rows) + " rows on this CPU");
}
template <GemvWeight W>
void sgemv_dots_multi(int rows, std::int64_t m, std::int64_t k, const float* const* x, const W* w, std::int64_t ldw,
                      float* const* y) {
#ifdef SCRIBE_X86
    if (detail::has_avx512f() && detail::with_rows(rows, [&](auto r) { detail::gemv_dots_multi_avx512<r()>(m, k, x, w, ldw, y); })) return;
    if (detail::has_avx2_fma_f16c() && detail::with_rows<6>(rows, [&](auto r) { detail::gemv_dots_multi_avx2<r()>(m, k, x, w, ldw, y); })) return;
#endif
    throw error("sgemv_dots_multi: no kernel for " + std::to_string(rows) + " rows on this CPU");
}
// The same with the x rows in bf16 too; only where gemv_multi_bf16_available().
inline bool gemv_multi_bf16_available() {
#ifdef SCRIBE_X86
    return detail::has_avx512bf16();
#else
    return false;
#endif
}
inline void sgemv_dots_multi(int rows, std::int64_t m, std::int64_t k, const bfloat16* const* x, const bfloat16* w,
                             std::int64_t ldw, float* const* y) {
#ifdef SCRIBE_X86
    if (detail::with_rows(rows, [&](auto r) { detail::gemv_dots_multi_bf16_avx512<r()>(m, k, x, w, ldw, y); })) return;
#endif
    throw error("sgemv_dots_multi: no bf16 kernel for " + std::to_string(rows) + " rows on this CPU");
}

}  // namespace scribe::cpu::simd
