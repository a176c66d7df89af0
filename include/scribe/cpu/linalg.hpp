// scribe/cpu/linalg.hpp — the SIMD GEMM and GEMV spread over a thread pool. Threads
// take disjoint column ranges of the result (aligned to the micro-kernel's width),
// so each element is computed by one thread, in the same order at any thread count.
#pragma once

#include "simd/gemm.hpp"
#include "simd/gemm_bf16.hpp"
#include "simd/gemv.hpp"
#include "thread_pool.hpp"

namespace scribe::cpu {

// C (row-major, ldc, f32) = A (m x k) * B (k x n); A and B f32, f16 or bf16;
// pool may be null (one thread).
template <class TA, class TB>
void gemm(thread_pool* pool, std::int64_t m, std::int64_t n, std::int64_t k, const simd::basic_matrix_view<TA>& a,
          const simd::basic_matrix_view<TB>& b, float* c, std::int64_t ldc) {
    if (!pool || pool->size() == 1 || n < 2 * 48) return simd::sgemm(m, n, k, a, b, c, ldc);
    pool->run([&](unsigned t) {
        const auto [n0, n1] = pool->part(n, t, 48);
        if (n1 > n0)
            simd::sgemm(m, n1 - n0, k, a, simd::basic_matrix_view<TB>{b.data + n0 * b.col_stride, b.row_stride, b.col_stride},
                        c + n0, ldc);
    });
}

// C = A * B with B packed beforehand (a weight): the same split over columns.
template <class TA>
void gemm(thread_pool* pool, std::int64_t m, const simd::basic_matrix_view<TA>& a, const simd::packed_matrix& b,
          float* c, std::int64_t ldc) {
    const auto n = b.cols();
    if (!pool || pool->size() == 1 || n < 2 * b.nr()) return simd::sgemm(m, n, a, b, 0, c, ldc);
    pool->run([&](unsigned t) {
        const auto [n0, n1] = pool->part(n, t, b.nr());
        if (n1 > n0) simd::sgemm(m, n1 - n0, a, b, n0, c + n0, ldc);
    });
}

// C = A * B with a bf16 B packed in pairs (AVX512_BF16): the same split over columns.
inline void gemm(thread_pool* pool, std::int64_t m, const simd::basic_matrix_view<bfloat16>& a,
                 const simd::packed_pairs& b, float* c, std::int64_t ldc) {
    const auto n = b.cols();
    if (!pool || pool->size() == 1 || n < 2 * b.nr()) return simd::bf16_gemm(m, n, a, b, 0, c, ldc);
    pool->run([&](unsigned t) {
        const auto [n0, n1] = pool->part(n, t, b.nr());
        if (n1 > n0) simd::bf16_gemm(m, n1 - n0, a, b, n0, c + n0, ldc);
    });
}

// y[0:m] = x[0:k] . W[0:k, 0:m] (W row-major, row stride ldw; f32, f16 or bf16 weights).
template <class W>
void gemv_rows(thread_pool* pool, std::int64_t m, std::int64_t k, const float* x, const W* w, std::int64_t ldw,
               float* y) {
    if (!pool || pool->size() == 1 || m < 2 * 64) return simd::sgemv_rows(m, k, x, w, ldw, y);
    pool->run([&](unsigned t) {
        const auto [m0, m1] = pool->part(m, t, 64);
        if (m1 > m0) simd::sgemv_rows(m1 - m0, k, x, w + m0, ldw, y + m0);
    });
}

// y[0:m] = W[0:m, 0:k] . x[0:k] (W's rows contiguous along k, row stride ldw):
// threads take disjoint row ranges.
template <class W>
void gemv_dots(thread_pool* pool, std::int64_t m, std::int64_t k, const float* x, const W* w, std::int64_t ldw,
               float* y) {
    if (!pool || pool->size() == 1 || m < 2 * 64) return simd::sgemv_dots(m, k, x, w, ldw, y);
    pool->run([&](unsigned t) {
        const auto [m0, m1] = pool->part(m, t, 64);
        if (m1 > m0) simd::sgemv_dots(m1 - m0, k, x, w + m0 * ldw, ldw, y + m0);
    });
}

}  // namespace scribe::cpu
