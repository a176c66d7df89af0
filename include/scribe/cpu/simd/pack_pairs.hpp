// scribe/cpu/simd/pack_pairs.hpp — bf16 operands packed for the pair kernels
// (gemm_bf16.hpp's vdpbf16ps tiles and gemm_amx.hpp's tiles).
//
// A pair word holds two bf16 values adjacent along k: (X(2p), X(2p + 1)), the
// first in the low half. B is packed into panels of nr columns, pair-major (per
// pair p, nr words); A into panels of mr rows, pair-major, for vdpbf16ps, or
// for AMX into rows of whole 32-element k steps (a tile row is 16 words along k).
//
// Every layout an operand arrives in is packed with vectors where the CPU has
// AVX-512 (every CPU with AVX512_BF16 has BW and VL): a row-major B interleaves
// two of its rows; a transposed B (a weight read as W^T, the tied LM head's
// logits, dY . W^T) has each column contiguous along k, so its pair words are
// dwords of a column, transposed 16 x 16; a transposed A (a weight gradient
// x^T . dy, whose k is the tokens) interleaves two of its columns and, for AMX,
// transposes those words. Other strides go element by element.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "gemm.hpp"
#include "transpose.hpp"

namespace scribe::cpu::simd::detail {

#ifdef SCRIBE_X86
// Whether this CPU has AVX512_BF16 (asked once).
inline bool has_avx512bf16() {
    static const bool yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f") != 0 &&
                                                       __builtin_cpu_supports("avx512bf16") != 0);
    return yes;
}
#else
inline bool has_avx512bf16() { return false; }
#endif

inline std::uint32_t pair_word(std::uint16_t lo, std::uint16_t hi) {
    return static_cast<std::uint32_t>(lo) | (static_cast<std::uint32_t>(hi) << 16);
}

#ifdef SCRIBE_X86
// Sixteen pair words, lane x = (lo[x], hi[x]), of the first `count` x (the rest
// 0); hi null: high halves 0 (an odd k's last pair).
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline __m512i pair_words16(const std::uint16_t* lo,
                                                                                   const std::uint16_t* hi,
                                                                                   std::int64_t count) {
    const auto mask = static_cast<__mmask16>(count >= 16 ? 0xFFFF : count <= 0 ? 0 : (1u << count) - 1);
    // (The zero-masked forms keep GCC 12 from warning about _mm512_undefined_epi32.)
    const __m512i l = _mm512_maskz_cvtepu16_epi32(mask, _mm256_maskz_loadu_epi16(mask, lo));
    if (!hi) return l;
    const __m512i h = _mm512_maskz_cvtepu16_epi32(mask, _mm256_maskz_loadu_epi16(mask, hi));
    return _mm512_or_si512(l, _mm512_maskz_slli_epi32(mask, h, 16));
}

// A row-major B's panels (b.col_stride 1): per pair, two rows interleaved 16 columns at a time.
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline void pack_b_pairs_rows(
    const basic_matrix_view<bfloat16>& b, std::int64_t k0, std::int64_t kb, std::int64_t n0, std::int64_t nb,
    std::int64_t nr, std::uint32_t* out) {
    const auto pairs = (kb + 1) / 2;
    for (std::int64_t j = 0; j < nb; j += nr) {
        const auto w = std::min(nr, nb - j);
        for (std::int64_t p = 0; p < pairs; ++p, out += nr) {
            const auto* r0 = reinterpret_cast<const std::uint16_t*>(b.data + (k0 + 2 * p) * b.row_stride + n0 + j);
            const auto* r1 = 2 * p + 1 < kb ? r0 + b.row_stride : nullptr;
            for (std::int64_t x = 0; x < nr; x += 16)
                _mm512_storeu_si512(out + x, pair_words16(r0 + x, r1 ? r1 + x : nullptr, w - x));
        }
    }
}

// A transposed B's panels (b.row_stride 1: column j's k values contiguous): the
// pair words of 16 columns x 16 pairs are dwords of 16 column runs, transposed.
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline void pack_b_pairs_columns(
    const basic_matrix_view<bfloat16>& b, std::int64_t k0, std::int64_t kb, std::int64_t n0, std::int64_t nb,
    std::int64_t nr, std::uint32_t* out) {
    const auto pairs = (kb + 1) / 2;
    for (std::int64_t j = 0; j < nb; j += nr, out += nr * pairs)
        for (std::int64_t x = 0; x < nr; x += 16)
            for (std::int64_t p = 0; p < pairs; p += 16) {
                const auto left = kb - 2 * p;  // k values of each column from pair p
                const auto mask = static_cast<__mmask32>(left >= 32 ? 0xFFFFFFFFu : (1u << left) - 1);
                __m512i v[16];
                SCRIBE_UNROLL
                for (int c = 0; c < 16; ++c)
                    v[c] = j + x + c < nb ? _mm512_maskz_loadu_epi16(mask, b.data + k0 + 2 * p + (n0 + j + x + c) * b.col_stride)
                                          : _mm512_setzero_si512();
                transpose16_epi32(v);
                const auto rows = std::min<std::int64_t>(16, pairs - p);
                for (std::int64_t r = 0; r < rows; ++r) _mm512_storeu_si512(out + (p + r) * nr + x, v[r]);
            }
}

// A transposed A's panel of h <= mr <= 16 rows from row i for vdpbf16ps (a.row_stride 1):
// per pair, two k's rows interleaved.
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline void pack_a_pairs_columns(
    const basic_matrix_view<bfloat16>& a, std::int64_t i, std::int64_t h, std::int64_t k0, std::int64_t kb,
    std::int64_t mr, std::uint32_t* out) {
    const auto mask = static_cast<__mmask16>((1u << h) - 1);
    for (std::int64_t p = 0; p < (kb + 1) / 2; ++p) {
        const auto* lo = reinterpret_cast<const std::uint16_t*>(a.data + i + (k0 + 2 * p) * a.col_stride);
        _mm512_mask_storeu_epi32(out + p * mr, mask, pair_words16(lo, 2 * p + 1 < kb ? lo + a.col_stride : nullptr, h));
    }
}

// A transposed A's rows for AMX (a.row_stride 1: row i's k values `col_stride`
// apart, each k's rows contiguous): 16 rows x 32 k at a time, the pair words of
// two k's 16 rows interleaved, then transposed so each vector is one row's 32 k.
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline void pack_a_rows_columns(
    const basic_matrix_view<bfloat16>& a, std::int64_t m, std::int64_t k0, std::int64_t kb, std::int64_t width,
    std::uint16_t* out) {
    const auto pairs = (kb + 1) / 2;
    for (std::int64_t y = 0; y < m; y += 16) {
        const auto h = std::min<std::int64_t>(16, m - y);
        for (std::int64_t p = 0; p < pairs; p += 16) {
            __m512i v[16];
            SCRIBE_UNROLL
            for (int q = 0; q < 16; ++q) {
                const auto k = 2 * (p + q);
                if (k >= kb) {
                    v[q] = _mm512_setzero_si512();
                    continue;
                }
                const auto* lo = reinterpret_cast<const std::uint16_t*>(a.data + y + (k0 + k) * a.col_stride);
                v[q] = pair_words16(lo, k + 1 < kb ? lo + a.col_stride : nullptr, h);
            }
            transpose16_epi32(v);
            for (std::int64_t r = 0; r < h; ++r) _mm512_storeu_si512(out + (y + r) * width + 2 * p, v[r]);
        }
    }
}
#endif

// B[k0:k0+kb, n0:n0+nb] -> panels of nr columns (a multiple of 16), pair-major, zero-padded.
inline void pack_b_pairs(const basic_matrix_view<bfloat16>& b, std::int64_t k0, std::int64_t kb, std::int64_t n0,
                         std::int64_t nb, std::int64_t nr, std::uint32_t* out) {
#ifdef SCRIBE_X86
    if (has_avx512bf16() && nr % 16 == 0) {
        if (b.col_stride == 1) return pack_b_pairs_rows(b, k0, kb, n0, nb, nr, out);
        if (b.row_stride == 1) return pack_b_pairs_columns(b, k0, kb, n0, nb, nr, out);
    }
#endif
    const auto pairs = (kb + 1) / 2;
    for (std::int64_t j = 0; j < nb; j += nr) {
        const auto w = std::min(nr, nb - j);
        for (std::int64_t p = 0; p < pairs; ++p) {
            const bfloat16* r0 = b.data + (k0 + 2 * p) * b.row_stride + (n0 + j) * b.col_stride;
            const bool second = 2 * p + 1 < kb;
            for (std::int64_t x = 0; x < w; ++x)
                out[x] = pair_word(r0[x * b.col_stride].bits, second ? r0[b.row_stride + x * b.col_stride].bits : 0);
            std::fill(out + w, out + nr, 0u);
            out += nr;
        }
    }
}

// A[m0:m0+mb, k0:k0+kb] -> panels of mr rows (at most 16), pair-major, zero-padded.
inline void pack_a_pairs(const basic_matrix_view<bfloat16>& a, std::int64_t m0, std::int64_t mb, std::int64_t k0,
                         std::int64_t kb, std::int64_t mr, std::uint32_t* out) {
    const auto pairs = (kb + 1) / 2;
    for (std::int64_t i = 0; i < mb; i += mr) {
        const auto h = std::min(mr, mb - i);
        if (h < mr) std::fill(out, out + mr * pairs, 0u);
#ifdef SCRIBE_X86
        if (a.row_stride == 1 && mr <= 16 && has_avx512bf16()) {  // transposed: two k's rows interleaved
            pack_a_pairs_columns(a, m0 + i, h, k0, kb, mr, out);
            out += mr * pairs;
            continue;
        }
#endif
        for (std::int64_t y = 0; y < h; ++y) {
            const bfloat16* src = a.data + (m0 + i + y) * a.row_stride + k0 * a.col_stride;
            if (a.col_stride == 1 && kb % 2 == 0) {  // a row-major row already holds the pairs
                for (std::int64_t p = 0; p < pairs; ++p) {
                    std::uint32_t word;
                    std::memcpy(&word, src + 2 * p, sizeof word);
                    out[p * mr + y] = word;
                }
                continue;
            }
            for (std::int64_t p = 0; p < pairs; ++p)
                out[p * mr + y] = pair_word(src[2 * p * a.col_stride].bits,
                                            2 * p + 1 < kb ? src[(2 * p + 1) * a.col_stride].bits : 0);
        }
        out += mr * pairs;
    }
}

// A[0:m, k0:k0+kb] -> rows of `width` bf16 (kb rounded up to whole 32-element
// steps), m rounded up to 32 rows, zero-padded: AMX's A tiles.
inline void pack_a_rows(const basic_matrix_view<bfloat16>& a, std::int64_t m, std::int64_t k0, std::int64_t kb,
                        std::int64_t width, std::uint16_t* out) {
    const auto rows = (m + 31) / 32 * 32;
    const auto steps = (kb + 31) / 32 * 32;  // the columns the tiles read
    std::int64_t y = 0;
#ifdef SCRIBE_X86
    if (a.row_stride == 1 && a.col_stride != 1 && has_avx512bf16()) {
        pack_a_rows_columns(a, m, k0, kb, width, out);
        y = m;
    }
#endif
    for (; y < rows; ++y) {
        auto* row = out + y * width;
        if (y >= m) {
            std::fill(row, row + steps, std::uint16_t{0});
            continue;
        }
        const bfloat16* src = a.data + y * a.row_stride + k0 * a.col_stride;
        if (a.col_stride == 1) std::memcpy(row, src, static_cast<std::size_t>(kb) * sizeof(std::uint16_t));
        else
            for (std::int64_t x = 0; x < kb; ++x) row[x] = src[x * a.col_stride].bits;
        std::fill(row + kb, row + steps, std::uint16_t{0});
    }
}

}  // namespace scribe::cpu::simd::detail
