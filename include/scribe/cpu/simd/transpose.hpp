// scribe/cpu/simd/transpose.hpp — transposes of 32-bit lanes in AVX-512
// registers, for the packing routines: a stage swaps one bit of the vector's
// index with the same bit of the lane's index, so the stages over bits 0-3 of
// sixteen vectors transpose a 16 x 16 block of dwords, and the stages over bits
// 0-2 of eight vectors an 8 x 8 block in each 256-bit half.
#pragma once

#include <cstdint>

#include "convert.hpp"

// Small loops over vectors unrolled, so that the vectors live in registers (GCC
// at -O2 otherwise keeps such arrays in memory).
#define SCRIBE_UNROLL _Pragma("GCC unroll 16")

#ifdef SCRIBE_X86
#include <immintrin.h>

namespace scribe::cpu::simd::detail {

// The lanes vpermt2d takes in one stage: for x (bit `Bit` of its vector index
// 0) and y (that bit 1), lo picks x's new lanes and hi y's, out of (x, y).
template <int Bit>
struct transpose_index {
    alignas(64) std::int32_t lo[16], hi[16];
    constexpr transpose_index() : lo{}, hi{} {
        for (int l = 0; l < 16; ++l) {
            const bool set = (l >> Bit) & 1;
            lo[l] = set ? 16 + l - (1 << Bit) : l;
            hi[l] = set ? 16 + l : l + (1 << Bit);
        }
    }
};
template <int Bit>
inline constexpr transpose_index<Bit> transpose_indices{};

// The lanes of x and y whose bit `Bit` differs from their vector's trade places.
template <int Bit>
__attribute__((target("avx512f"))) inline void transpose_stage(__m512i& x, __m512i& y) {
    const __m512i a = _mm512_permutex2var_epi32(x, _mm512_load_si512(transpose_indices<Bit>.lo), y);
    y = _mm512_permutex2var_epi32(x, _mm512_load_si512(transpose_indices<Bit>.hi), y);
    x = a;
}

// v[r] lane c <- v[c] lane r, for 16 x 16 dwords.
__attribute__((target("avx512f"))) inline void transpose16_epi32(__m512i (&v)[16]) {
    SCRIBE_UNROLL
    for (int i = 0; i < 8; ++i) transpose_stage<3>(v[i], v[i + 8]);
    SCRIBE_UNROLL
    for (int i = 0; i < 16; ++i)
        if (!(i & 4)) transpose_stage<2>(v[i], v[i + 4]);
    SCRIBE_UNROLL
    for (int i = 0; i < 16; ++i)
        if (!(i & 2)) transpose_stage<1>(v[i], v[i + 2]);
    SCRIBE_UNROLL
    for (int i = 0; i < 16; i += 2) transpose_stage<0>(v[i], v[i + 1]);
}

}  // namespace scribe::cpu::simd::detail
#endif
