// scribe/cpu/simd/gemm_f16.hpp — f16 x f16 -> f32 products on AMX's bf16 tiles.
//
// An f16 value x is exactly hi + lo with hi = bf16(x) and lo = bf16(x - hi): x
// has 11 significant bits, hi keeps 8 and the remainder (3 bits) fits lo, and
// f16's exponents are a subset of bf16's. So a * b = a_hi b_hi + a_hi b_lo +
// a_lo b_hi + a_lo b_lo, every term exact in f32. The last is below 2^-16 of the
// product and is dropped (oneDNN's and XLA's "bf16x3"), far under the 2^-11 to
// which an f16 result is rounded. Three bf16 GEMMs on AMX, accumulating into one
// f32 C, take less time than one f32 GEMM of the widened values: measured on a
// Xeon with AMX (1 thread, 128 x 768 x 3072, 24 weights read in turn), 240-260
// GFLOP/s against the f32 panels' 145-165.
//
// A weight is split and packed once (split_pairs: hi and lo pair panels in one
// block, 4 bytes a weight like the f32 panels it replaces); the activations are
// split per product (split_rows).
#pragma once

#include <cstdint>
#include <vector>

#include "convert.hpp"
#include "gemm_bf16.hpp"

namespace scribe::cpu::simd {

// Rows [0, m) of a (k columns) split into row-major hi and lo, m x k bf16 each.
inline void split_rows(const basic_matrix_view<half>& a, std::int64_t m, std::int64_t k, bfloat16* hi, bfloat16* lo) {
    thread_local aligned_vector<float> x, h;
    x.resize(static_cast<std::size_t>(k));
    h.resize(static_cast<std::size_t>(k));
    for (std::int64_t i = 0; i < m; ++i) {
        const half* src = a.data + i * a.row_stride;
        if (a.col_stride == 1) widen(src, x.data(), k);
        else
            for (std::int64_t j = 0; j < k; ++j) x[static_cast<std::size_t>(j)] = to_f32(src[j * a.col_stride]);
        narrow(x.data(), hi + i * k, k);
        widen(hi + i * k, h.data(), k);
        for (std::int64_t j = 0; j < k; ++j) {
            const auto d = x[static_cast<std::size_t>(j)] - h[static_cast<std::size_t>(j)];
            x[static_cast<std::size_t>(j)] = d == d ? d : 0.0f;  // an infinity's or NaN's rest is 0
        }
        narrow(x.data(), lo + i * k, k);
    }
}

// An f16 B matrix (k x n) split into bf16 hi and lo and packed once into pair
// panels (packed_pairs), both in one block: hi's panels, then lo's.
class split_pairs {
public:
    split_pairs() = default;
    split_pairs(const basic_matrix_view<half>& b, std::int64_t k, std::int64_t n) : k_(k), n_(n) {
        std::vector<bfloat16> hi(static_cast<std::size_t>(k * n)), lo(hi.size());
        // b transposed (k rows of n) is split as n rows of k, read down its columns.
        split_rows(basic_matrix_view<half>{b.data, b.col_stride, b.row_stride}, n, k, hi.data(), lo.data());
        data_.resize(size_for(k, n));
        hi_ = packed_pairs(basic_matrix_view<bfloat16>{hi.data(), 1, k}, k, n, data_.data());
        lo_ = packed_pairs(basic_matrix_view<bfloat16>{lo.data(), 1, k}, k, n, data_.data() + size_for(k, n) / 2);
    }
    split_pairs(const split_pairs&) = delete;  // hi and lo point into data_
    split_pairs& operator=(const split_pairs&) = delete;
    split_pairs(split_pairs&&) noexcept = default;  // a vector's move keeps its block
    split_pairs& operator=(split_pairs&&) noexcept = default;

    // Words (two bf16 each) the panels of a k x n matrix take on this CPU.
    static std::size_t size_for(std::int64_t k, std::int64_t n) { return 2 * packed_pairs::size_for(k, n); }
    // Panels a split_pairs of the same k and n wrote on a CPU with the same
    // kernels, borrowed: `data` (size_for(k, n) words) must outlive the result.
    static split_pairs borrow(const std::uint32_t* data, std::int64_t k, std::int64_t n) {
        split_pairs s;
        s.k_ = k, s.n_ = n;
        s.hi_ = packed_pairs::borrow(data, k, n);
        s.lo_ = packed_pairs::borrow(data + size_for(k, n) / 2, k, n);
        return s;
    }
    std::int64_t rows() const { return k_; }
    std::int64_t cols() const { return n_; }
    std::int64_t nr() const { return hi_.nr(); }
    std::size_t bytes() const { return hi_.bytes() + lo_.bytes(); }
    const std::uint32_t* data() const { return hi_.data(); }  // hi's panels, lo's after them
    const packed_pairs& hi() const { return hi_; }
    const packed_pairs& lo() const { return lo_; }

private:
    std::int64_t k_ = 0, n_ = 0;
    aligned_vector<std::uint32_t> data_;  // empty when borrowed
    packed_pairs hi_, lo_;
};

// C = A * B[:, n0 : n0 + n] for an f16 A split into a_hi and a_lo (split_rows)
// and an f16 B split and packed; n0 a multiple of B's nr. Needs
// detail::has_amx_bf16() (B's panels are 32 columns wide there).
inline void f16_split_gemm(std::int64_t m, std::int64_t n, const basic_matrix_view<bfloat16>& a_hi,
                           const basic_matrix_view<bfloat16>& a_lo, const split_pairs& b, std::int64_t n0, float* c,
                           std::int64_t ldc) {
    const auto hi = [&](std::int64_t k0, std::int64_t kb, std::int64_t j, std::int64_t) { return b.hi().panels(k0, kb, n0 + j); };
    const auto lo = [&](std::int64_t k0, std::int64_t kb, std::int64_t j, std::int64_t) { return b.lo().panels(k0, kb, n0 + j); };
    const auto kc = b.hi().kernel().kc;
    detail::gemm_pairs_amx(b.nr(), kc, m, n, b.rows(), a_hi, hi, c, ldc);
    detail::gemm_pairs_amx(b.nr(), kc, m, n, b.rows(), a_hi, lo, c, ldc, true);
    detail::gemm_pairs_amx(b.nr(), kc, m, n, b.rows(), a_lo, hi, c, ldc, true);
}

}  // namespace scribe::cpu::simd
