// scribe/cpu/simd/gemv_batched.hpp — batched products of a few rows with matrices
// that interleave in memory: decode's attention, where each key/value head's
// queries (or probabilities) meet a KV cache laid out [keys, heads, head_dim], so
// one head's part of the cache is a short run in every cache row.
//
//   dots: y[b][m][n] = sum_k x[b][m][k] W[b sb + n sn + k]   (q . K^T: k contiguous)
//   rows: y[b][m][j] = sum_n x[b][m][n] W[b sb + n sn + j]   (p . V:   j contiguous)
//
// Head by head, the cache is read one short stride after another; with the
// cache evicted by the weights' stream (as it is between a decode step's
// layers), that measured 2-3 GB/s on Zen 5, and prefetching the whole cache
// first only partly helped. Here every cache row is read once, all heads of one
// key and then the next key, in memory order, which the prefetchers follow as
// one stream: the two products of a LLaMA layer (4 key/value heads of 64, 192
// keys) went from 33 + 33 to 14 + 13 us in f16 and from 49 + 30 to 16 + 14 us
// in f32, cold. Each row's lines are also prefetched 2 and 8 KiB ahead (as
// gemv.hpp's weight rows are): on an Emerald Rapids VM, whose prefetchers alone
// held these short streams at 7-10 GB/s, GPT-2's two products (12 heads of 64,
// 192 keys, cold) went from 42 + 39 to 24-29 + 20-25 us in f16 and from 61 + 57
// to 39-46 + 37-42 us in f32.
//
// x is f32 [B][M][K] (dots) or [B][M][N] (rows), W f32, f16 or bf16, y f32;
// 1 <= M <= 8 rows per batch (a grouped-query head's group); the contiguous
// extent (K for dots, the row length J for rows) a multiple of 16. Dots on
// AVX-512 or AVX2, rows on AVX-512 (batched_dots_available, batched_rows_available);
// callers take their other paths elsewhere. On a Zen 1 core the AVX2 dots took
// GPT-2's q . K (12 heads of 64, 192 keys, bf16 cache) from 0.72-0.74 to 0.50-0.56
// ms a step for the 12 layers, and at 5 rows per head (a speculative verify) from
// 3.6-3.7 to 1.0-1.1 (f32: 2.6-2.7 to 1.5).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "convert.hpp"
#include "gemv.hpp"

#if defined(__GNUC__) && !defined(__clang__)  // GCC's false positive inside its own intrinsics (see gemv.hpp)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace scribe::cpu::simd {

inline constexpr int batched_gemv_max_rows = 8;

namespace detail {
// The shapes both kernels take: 1 to 8 rows per batch, a contiguous extent a multiple of 16.
inline bool batched_gemv_shape(std::int64_t rows, std::int64_t extent) {
    return rows >= 1 && rows <= batched_gemv_max_rows && extent > 0 && extent % 16 == 0;
}
}  // namespace detail

// Whether batched_dots has a kernel on this CPU for `rows` rows per batch and K =
// `extent`: AVX-512, or AVX2 + FMA + F16C.
inline bool batched_dots_available(std::int64_t rows, std::int64_t extent) {
#ifdef SCRIBE_X86
    return detail::batched_gemv_shape(rows, extent) && (detail::has_avx512f() || detail::has_avx2_fma_f16c());
#else
    (void)rows, (void)extent;
    return false;
#endif
}
// Whether batched_rows has one for `rows` rows per batch and J = `extent`:
// AVX-512 only. On AVX2 (a Zen 1 core, GPT-2's 12 heads of 64 against 192 keys)
// a rows kernel in memory order, keys 2 or 4 at a time, took 1.20-1.47 ms a
// step for the 12 layers' p . V at 5 rows per head against 0.96-1.10 by the
// per-head GEMVs, and tied them at 1 row (0.68-0.84 against 0.72-0.87), so p . V
// stays on those there.
inline bool batched_rows_available(std::int64_t rows, std::int64_t extent) {
#ifdef SCRIBE_X86
    return detail::batched_gemv_shape(rows, extent) && detail::has_avx512f();
#else
    (void)rows, (void)extent;
    return false;
#endif
}

namespace detail {
#ifdef SCRIBE_X86
// gemv.hpp's prefetch_ahead for each line of a cache row's part [p, p + n): the
// rows follow one another, so this asks for the lines 2 and 8 KiB further on.
template <class W>
void prefetch_row(const W* p, std::int64_t n) {
    const auto* bytes = reinterpret_cast<const char*>(p);
    for (std::int64_t i = 0; i < n * std::int64_t{sizeof(W)}; i += 64) prefetch_ahead(bytes + i);
}

// Rows n0..n1 of the dots for all B batches. Each dot's sixteen lanes are kept
// until sixteen keys are done, then reduced together (sum16_avx512), as in
// gemv.hpp's row kernel.
template <int M, class W>
__attribute__((target("avx512f"))) void batched_dots_avx512(std::int64_t B, std::int64_t n0, std::int64_t n1, std::int64_t K,
                                                            const float* x, const W* w, std::int64_t sb, std::int64_t sn,
                                                            float* y, std::int64_t N) {
    // Aligned by hand: the allocator does not honour __m512's 64 bytes here (a
    // vector<__m512> drops the type's alignment attribute, and so does GCC's
    // allocation of a struct of one), and GCC at -O0 stores them with vmovaps.
    std::vector<float> kept(static_cast<std::size_t>(B * M * 16 * 16 + 16));
    const auto at = reinterpret_cast<std::uintptr_t>(kept.data());
    __m512* sums = reinterpret_cast<__m512*>((at + 63) & ~std::uintptr_t{63});
    for (std::int64_t r0 = n0; r0 < n1; r0 += 16) {
        const int rows = static_cast<int>(std::min<std::int64_t>(16, n1 - r0));
        for (int j = 0; j < rows; ++j) {
            const W* row = w + (r0 + j) * sn;
            prefetch_row(row, B * sb);
            for (std::int64_t b = 0; b < B; ++b) {
                const W* wb = row + b * sb;
                const float* xb = x + b * M * K;
                __m512 acc[M];
#pragma GCC unroll 8
                for (int m = 0; m < M; ++m) acc[m] = _mm512_setzero_ps();
                for (std::int64_t k = 0; k < K; k += 16) {
                    const __m512 v = widen16_avx512(wb + k);
#pragma GCC unroll 8
                    for (int m = 0; m < M; ++m) acc[m] = _mm512_fmadd_ps(v, _mm512_loadu_ps(xb + m * K + k), acc[m]);
                }
#pragma GCC unroll 8
                for (int m = 0; m < M; ++m) sums[(b * M + m) * 16 + j] = acc[m];
            }
        }
        const auto mask = static_cast<__mmask16>((1u << rows) - 1);
        for (std::int64_t i = 0; i < B * M; ++i) {
            __m512* s = sums + i * 16;
            for (int j = rows; j < 16; ++j) s[j] = _mm512_setzero_ps();
            _mm512_mask_storeu_ps(y + i * N + r0, mask, sum16_avx512(s));
        }
    }
}

// Batches b0..b1 of the rows product, over all N rows of W: y accumulates in
// place (a few KiB, in L1), each W row's part read once.
template <int M, class W>
__attribute__((target("avx512f"))) void batched_rows_avx512(std::int64_t b0, std::int64_t b1, std::int64_t N, std::int64_t J,
                                                            const float* x, const W* w, std::int64_t sb, std::int64_t sn,
                                                            float* y) {
    std::fill(y + b0 * M * J, y + b1 * M * J, 0.0f);
    for (std::int64_t n = 0; n < N; ++n) {
        const W* row = w + n * sn;
        prefetch_row(row + b0 * sb, (b1 - b0) * sb);
        for (std::int64_t b = b0; b < b1; ++b) {
            const W* wb = row + b * sb;
            float* yb = y + b * M * J;
            __m512 p[M];
#pragma GCC unroll 8
            for (int m = 0; m < M; ++m) p[m] = _mm512_set1_ps(x[(b * M + m) * N + n]);
            for (std::int64_t j = 0; j < J; j += 16) {
                const __m512 v = widen16_avx512(wb + j);
#pragma GCC unroll 8
                for (int m = 0; m < M; ++m) _mm512_storeu_ps(yb + m * J + j, _mm512_fmadd_ps(p[m], v, _mm512_loadu_ps(yb + m * J + j)));
            }
        }
    }
}

// The dots on AVX2 + FMA (+ F16C), eight lanes a vector: each dot's lanes summed
// as soon as it is done (hsum8_avx2), the rest as above.
template <int M, class W>
__attribute__((target("avx2,fma,f16c"))) void batched_dots_avx2(std::int64_t B, std::int64_t n0, std::int64_t n1, std::int64_t K,
                                                               const float* x, const W* w, std::int64_t sb, std::int64_t sn,
                                                               float* y, std::int64_t N) {
    for (std::int64_t n = n0; n < n1; ++n) {
        const W* row = w + n * sn;
        prefetch_row(row, B * sb);
        for (std::int64_t b = 0; b < B; ++b) {
            const W* wb = row + b * sb;
            const float* xb = x + b * M * K;
            __m256 acc[M];
#pragma GCC unroll 8
            for (int m = 0; m < M; ++m) acc[m] = _mm256_setzero_ps();
            for (std::int64_t k = 0; k < K; k += 8) {
                const __m256 v = widen8_avx2(wb + k);
#pragma GCC unroll 8
                for (int m = 0; m < M; ++m) acc[m] = _mm256_fmadd_ps(v, _mm256_loadu_ps(xb + m * K + k), acc[m]);
            }
#pragma GCC unroll 8
            for (int m = 0; m < M; ++m) y[(b * M + m) * N + n] = hsum8_avx2(acc[m]);
        }
    }
}

#endif

// f(std::integral_constant<int, M>{}) for 1 <= M <= 8.
template <class F>
void with_group(int rows, F&& f) {
    switch (rows) {
        case 1: return f(std::integral_constant<int, 1>{});
        case 2: return f(std::integral_constant<int, 2>{});
        case 3: return f(std::integral_constant<int, 3>{});
        case 4: return f(std::integral_constant<int, 4>{});
        case 5: return f(std::integral_constant<int, 5>{});
        case 6: return f(std::integral_constant<int, 6>{});
        case 7: return f(std::integral_constant<int, 7>{});
        case 8: return f(std::integral_constant<int, 8>{});
        default: throw error("batched gemv: no kernel for " + std::to_string(rows) + " rows per batch (1 to 8)");
    }
}
}  // namespace detail

// y[b][m][n] = sum_k x[b][m][k] W[b sb + n sn + k] for every batch b < B, m <
// rows and n0 <= n < n1 (y's rows N long); only where batched_dots_available(rows, K).
template <GemvWeight W>
void batched_dots(int rows, std::int64_t B, std::int64_t n0, std::int64_t n1, std::int64_t K, const float* x, const W* w,
                  std::int64_t sb, std::int64_t sn, float* y, std::int64_t N) {
    if (!batched_dots_available(rows, K)) throw error("batched_dots: no kernel for this shape on this CPU");
#ifdef SCRIBE_X86
    if (detail::has_avx512f())
        detail::with_group(rows, [&](auto m) { detail::batched_dots_avx512<m()>(B, n0, n1, K, x, w, sb, sn, y, N); });
    else
        detail::with_group(rows, [&](auto m) { detail::batched_dots_avx2<m()>(B, n0, n1, K, x, w, sb, sn, y, N); });
#endif
}

// y[b][m][j] = sum_n x[b][m][n] W[b sb + n sn + j] for b0 <= b < b1, m < rows,
// n < N and j < J; only where batched_rows_available(rows, J).
template <GemvWeight W>
void batched_rows(int rows, std::int64_t b0, std::int64_t b1, std::int64_t N, std::int64_t J, const float* x, const W* w,
                  std::int64_t sb, std::int64_t sn, float* y) {
    if (!batched_rows_available(rows, J)) throw error("batched_rows: no kernel for this shape on this CPU");
#ifdef SCRIBE_X86
    detail::with_group(rows, [&](auto m) { detail::batched_rows_avx512<m()>(b0, b1, N, J, x, w, sb, sn, y); });
#endif
}

}  // namespace scribe::cpu::simd

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
