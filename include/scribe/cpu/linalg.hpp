// scribe/cpu/linalg.hpp — the SIMD GEMM and GEMV spread over a thread pool. Threads
// take disjoint column ranges of the result (aligned to the micro-kernel's width),
// or row ranges when the result has more rows than columns (each thread then
// packs only its part of A, the larger operand), so each element is computed by
// one thread, in the same order at any thread count.
#pragma once

#include "simd/gemm.hpp"
#include "simd/gemm_bf16.hpp"
#include "simd/gemm_f16.hpp"
#include "simd/gemv.hpp"
#include "thread_pool.hpp"

namespace scribe::cpu {

// Calls f(n0, n1) for disjoint ranges of output columns (or GEMV rows) covering
// [0, n), aligned to `align`: once, for all of them, without a pool or with fewer
// than two aligned blocks.
template <class F>
void over_columns(thread_pool* pool, std::int64_t n, std::int64_t align, F&& f) {
    if (!pool || pool->size() == 1 || n < 2 * align) return f(std::int64_t{0}, n);
    pool->run([&](unsigned t) {
        const auto [n0, n1] = pool->part(n, t, align);
        if (n1 > n0) f(n0, n1);
    });
}

// C (row-major, ldc, f32) = A (m x k) * B (k x n); A and B f32, f16 or bf16;
// pool may be null (one thread). Every thread packs the B panels of its columns
// and the A panels of its rows (a row-major f32 A is read in place): a tall
// result whose A is packed (a weight gradient, x^T . dy, such as the LM head's
// [vocab, hidden]) is split by rows, so A is not packed once per thread.
// Two bf16 operands run on the pair kernels where they outrun the f32 FMAs
// (simd::detail::bf16_pairs_preferred: AMX's tiles, or vdpbf16ps where it issues
// fast enough), B packed a block at a time by each thread; else on the f32 GEMM.
template <class TA, class TB>
void gemm(thread_pool* pool, std::int64_t m, std::int64_t n, std::int64_t k, const simd::basic_matrix_view<TA>& a,
          const simd::basic_matrix_view<TB>& b, float* c, std::int64_t ldc) {
    if constexpr (std::is_same_v<TA, bfloat16> && std::is_same_v<TB, bfloat16>)
        if (simd::detail::bf16_pairs_preferred()) {
            constexpr std::int64_t align = 96;  // whole AMX tiles (32 x 32) and pair tiles (12 x 32, 8 x 48)
            if (m > n && m >= 2 * align)
                over_columns(pool, m, align, [&](std::int64_t m0, std::int64_t m1) {
                    simd::bf16_gemm(m1 - m0, n, k, simd::basic_matrix_view<TA>{a.data + m0 * a.row_stride, a.row_stride, a.col_stride},
                                    b, c + m0 * ldc, ldc);
                });
            else
                over_columns(pool, n, align, [&](std::int64_t n0, std::int64_t n1) {
                    simd::bf16_gemm(m, n1 - n0, k, a, simd::basic_matrix_view<TB>{b.data + n0 * b.col_stride, b.row_stride, b.col_stride},
                                    c + n0, ldc);
                });
            return;
        }
    constexpr std::int64_t rows_align = 24;  // a multiple of every MR (12, 8, 6, 4)
    const bool a_packed = !std::is_same_v<TA, float> || a.col_stride != 1;
    if (a_packed && m > n && m >= 2 * rows_align) {
        over_columns(pool, m, rows_align, [&](std::int64_t m0, std::int64_t m1) {
            simd::sgemm(m1 - m0, n, k, simd::basic_matrix_view<TA>{a.data + m0 * a.row_stride, a.row_stride, a.col_stride}, b,
                        c + m0 * ldc, ldc);
        });
        return;
    }
    over_columns(pool, n, 48, [&](std::int64_t n0, std::int64_t n1) {
        simd::sgemm(m, n1 - n0, k, a, simd::basic_matrix_view<TB>{b.data + n0 * b.col_stride, b.row_stride, b.col_stride},
                    c + n0, ldc);
    });
}

// C = A * B with B packed beforehand (a weight): the same split over columns.
template <class TA>
void gemm(thread_pool* pool, std::int64_t m, const simd::basic_matrix_view<TA>& a, const simd::packed_matrix& b,
          float* c, std::int64_t ldc) {
    over_columns(pool, b.cols(), b.nr(), [&](std::int64_t n0, std::int64_t n1) { simd::sgemm(m, n1 - n0, a, b, n0, c + n0, ldc); });
}

// C = A * B with a bf16 B packed in pairs (AVX512_BF16): the same split over columns.
inline void gemm(thread_pool* pool, std::int64_t m, const simd::basic_matrix_view<bfloat16>& a,
                 const simd::packed_pairs& b, float* c, std::int64_t ldc) {
    over_columns(pool, b.cols(), b.nr(), [&](std::int64_t n0, std::int64_t n1) { simd::bf16_gemm(m, n1 - n0, a, b, n0, c + n0, ldc); });
}

// The same, the result rounded to bf16 into out (ldo elements a row); c (f32,
// ldc) for partial sums, null where !simd::bf16_gemm_needs_f32(b).
inline void gemm(thread_pool* pool, std::int64_t m, const simd::basic_matrix_view<bfloat16>& a, const simd::packed_pairs& b,
                 bfloat16* out, std::int64_t ldo, float* c, std::int64_t ldc) {
    over_columns(pool, b.cols(), b.nr(), [&](std::int64_t n0, std::int64_t n1) {
        simd::bf16_gemm(m, n1 - n0, a, b, n0, {out + n0, ldo}, c ? c + n0 : nullptr, ldc);
    });
}

// C = A * B for an f16 A and an f16 B split and packed for AMX (simd/gemm_f16.hpp):
// A is split once, then the columns are split over the threads.
inline void gemm(thread_pool* pool, std::int64_t m, const simd::basic_matrix_view<half>& a, const simd::split_pairs& b,
                 float* c, std::int64_t ldc) {
    const auto k = b.rows();
    thread_local simd::aligned_vector<bfloat16> split;  // A's hi rows, then its lo rows
    split.resize(static_cast<std::size_t>(2 * m * k));
    simd::split_rows(a, m, k, split.data(), split.data() + m * k);
    const simd::basic_matrix_view<bfloat16> hi{split.data(), k, 1}, lo{split.data() + m * k, k, 1};
    over_columns(pool, b.cols(), b.nr(), [&](std::int64_t n0, std::int64_t n1) { simd::f16_split_gemm(m, n1 - n0, hi, lo, b, n0, c + n0, ldc); });
}

// y[0:m] = x[0:k] . W[0:k, 0:m] (W row-major, row stride ldw; f32, f16 or bf16 weights).
template <class W>
void gemv_rows(thread_pool* pool, std::int64_t m, std::int64_t k, const float* x, const W* w, std::int64_t ldw,
               float* y) {
    over_columns(pool, m, 64, [&](std::int64_t m0, std::int64_t m1) { simd::sgemv_rows(m1 - m0, k, x, w + m0, ldw, y + m0); });
}

// y[0:m] = W[0:m, 0:k] . x[0:k] (W's rows contiguous along k, row stride ldw):
// threads take disjoint row ranges. x is f32, or bf16 with a bf16 W (see
// simd::sgemv_dots).
template <class X, class W>
void gemv_dots(thread_pool* pool, std::int64_t m, std::int64_t k, const X* x, const W* w, std::int64_t ldw,
               float* y) {
    over_columns(pool, m, 64, [&](std::int64_t m0, std::int64_t m1) { simd::sgemv_dots(m1 - m0, k, x, w + m0 * ldw, ldw, y + m0); });
}

// y[r][0:m] = x[r][0:k] . W[0:k, 0:m] for 2 to simd::gemv_multi_rows() rows r, W read once (threads take
// disjoint column ranges); only where simd::gemv_multi_available().
template <class W>
void gemv_rows_multi(thread_pool* pool, int rows, std::int64_t m, std::int64_t k, const float* const* x, const W* w,
                     std::int64_t ldw, float* const* y) {
    over_columns(pool, m, 64, [&](std::int64_t m0, std::int64_t m1) {
        float* ys[8];
        for (int r = 0; r < rows; ++r) ys[r] = y[r] + m0;
        simd::sgemv_rows_multi(rows, m1 - m0, k, x, w + m0, ldw, ys);
    });
}
// y[r][0:m] = W[0:m, 0:k] . x[r][0:k] for 2 to simd::gemv_multi_rows() rows r (W's rows along k), W read
// once. x rows in f32, or in bf16 with a bf16 W where simd::gemv_multi_bf16_available().
template <class X, class W>
void gemv_dots_multi(thread_pool* pool, int rows, std::int64_t m, std::int64_t k, const X* const* x, const W* w,
                     std::int64_t ldw, float* const* y) {
    over_columns(pool, m, 64, [&](std::int64_t m0, std::int64_t m1) {
        float* ys[8];
        for (int r = 0; r < rows; ++r) ys[r] = y[r] + m0;
        simd::sgemv_dots_multi(rows, m1 - m0, k, x, w + m0 * ldw, ldw, ys);
    });
}

}  // namespace scribe::cpu
