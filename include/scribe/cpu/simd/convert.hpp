// scribe/cpu/simd/convert.hpp — f16/bf16 <-> f32 over arrays: the conversions
// that 16-bit models do around every kernel (widening operands, rounding a fused
// op's result as the unfused op would store it, storing outputs). Bit-exact with
// the scalar conversions of core/dtype.hpp (round to nearest even, subnormals,
// infinities; a NaN becomes the quiet NaN of the same sign): F16C's
// vcvtps2ph/vcvtph2ps with the rounding fixed in the instruction, and bf16 by
// integer rounding on the f32 bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SCRIBE_X86 1
#endif

#include "../../core/dtype.hpp"

namespace scribe::cpu::simd {

// An allocator for vectors that SIMD code reads and writes whole cache lines of:
// 64-byte aligned (malloc gives 16, and a 64-byte load or store across two lines
// costs two).
template <class T>
struct aligned_allocator {
    using value_type = T;
    aligned_allocator() = default;
    template <class U>
    aligned_allocator(const aligned_allocator<U>&) noexcept {}
    T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})); }
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{64}); }
    template <class U>
    bool operator==(const aligned_allocator<U>&) const noexcept { return true; }
};
template <class T>
using aligned_vector = std::vector<T, aligned_allocator<T>>;

inline float to_f32(float v) { return v; }
inline float to_f32(half v) { return f16_bits_to_f32(v.bits); }
inline float to_f32(bfloat16 v) { return bf16_bits_to_f32(v.bits); }
template <class H>
H from_f32(float v);
template <>
inline half from_f32<half>(float v) { return half{f32_to_f16_bits(v)}; }
template <>
inline bfloat16 from_f32<bfloat16>(float v) { return bfloat16{f32_to_bf16_bits(v)}; }

namespace detail {

#ifdef SCRIBE_X86
// Whether this CPU runs AVX-512F (asked once): the dispatch of the SIMD kernels.
inline bool has_avx512f() {
    static const bool yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f") != 0);
    return yes;
}
// Whether this CPU runs AVX2, FMA and F16C (asked once): the AVX2 kernels' set.
inline bool has_avx2_fma_f16c() {
    static const bool yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                                                       __builtin_cpu_supports("f16c"));
    return yes;
}
// Whether this is an AMD Zen 1 (znver1: EPYC 7001, Ryzen 1000 and 2000): AVX2
// on 128-bit units, where a 256-bit instruction is two and some widenings run
// faster as 128-bit ones (gemv.hpp's bf16 products).
inline bool is_zen1() {
    static const bool yes = (__builtin_cpu_init(), __builtin_cpu_is("znver1") != 0);
    return yes;
}
#endif

#ifdef SCRIBE_X86
#if defined(__GNUC__) && !defined(__clang__)  // GCC's false positive; Clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
// Sixteen elements as f32 (16-bit ones widened): the SIMD kernels' one load.
__attribute__((target("avx512f"))) inline __m512 widen16_avx512(const float* p) { return _mm512_loadu_ps(p); }
__attribute__((target("avx512f"))) inline __m512 widen16_avx512(const half* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
__attribute__((target("avx512f"))) inline __m512 widen16_avx512(const bfloat16* p) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}
// Eight elements as f32 (16-bit ones widened): the AVX2 kernels' one load.
__attribute__((target("avx2,fma,f16c"))) inline __m256 widen8_avx2(const float* p) { return _mm256_loadu_ps(p); }
__attribute__((target("avx2,fma,f16c"))) inline __m256 widen8_avx2(const half* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
__attribute__((target("avx2,fma,f16c"))) inline __m256 widen8_avx2(const bfloat16* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
// Eight bf16 as two vectors of four, by vpunpcklwd/vpunpckhwd with zero: on Zen 1
// (is_zen1), whose AVX2 runs on 128-bit units, half the cost of widen8_avx2's
// 256-bit vpmovzxwd and shift (the bf16 GEMV's widening, gemv.hpp, and widen()'s).
__attribute__((target("avx2,fma,f16c"))) inline void widen8_sse(const bfloat16* p, __m128& a, __m128& b) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), zero = _mm_setzero_si128();
    a = _mm_castsi128_ps(_mm_unpacklo_epi16(zero, v));
    b = _mm_castsi128_ps(_mm_unpackhi_epi16(zero, v));
}
// The sum of an AVX2 vector's eight lanes.
__attribute__((target("avx2,fma,f16c"))) inline float hsum8_avx2(__m256 v) {
    const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}
// Sixteen f32 -> f16 bits, NaN made the scalar conversion's quiet NaN.
__attribute__((target("avx512f"))) inline __m256i narrow16_avx512(__m512 v, half*) {
    __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    if (nan) {
        const __m512i bits = _mm512_castps_si512(v);
        const __m512i q = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x8000)),
                                          _mm512_set1_epi32(0x7e00));
        const __m512i wide = _mm512_mask_mov_epi32(_mm512_cvtepu16_epi32(h), nan, q);
        h = _mm512_cvtepi32_epi16(wide);
    }
    return h;
}
// Sixteen f32 rounded to bf16 in their top halves (the low halves are not
// cleared): add 0x7fff plus the kept part's lowest bit; a NaN gets the quiet bit.
__attribute__((target("avx512f"))) inline __m512i bf16_rounded_avx512(__m512 v) {
    const __m512i bits = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(bits, _mm512_set1_epi32(0x400000)));
}
__attribute__((target("avx512f"))) inline __m256i narrow16_avx512(__m512 v, bfloat16*) {
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(bf16_rounded_avx512(v), 16));
}

template <class H>
__attribute__((target("avx512f"))) void widen_avx512(const H* src, float* dst, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, widen16_avx512(src + i));
    for (; i < n; ++i) dst[i] = to_f32(src[i]);
}
// Bytes as 1.0f where nonzero, else 0.0f (a pred operand of a float kernel).
__attribute__((target("avx512f"))) inline void widen_pred_avx512(const std::uint8_t* src, float* dst, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
        _mm512_storeu_ps(dst + i, _mm512_maskz_mov_ps(_mm512_test_epi32_mask(b, b), _mm512_set1_ps(1.0f)));
    }
    for (; i < n; ++i) dst[i] = src[i] ? 1.0f : 0.0f;
}
template <class H>
__attribute__((target("avx512f"))) void narrow_avx512(const float* src, H* dst, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), narrow16_avx512(_mm512_loadu_ps(src + i), dst));
    for (; i < n; ++i) dst[i] = from_f32<H>(src[i]);
}
// x = widen(narrow(x)) in place: the value a 16-bit store would keep, in registers.
__attribute__((target("avx512f"))) inline __m512 round16_avx512(__m512 v, half* tag) {
    return _mm512_cvtph_ps(narrow16_avx512(v, tag));
}
__attribute__((target("avx512f"))) inline __m512 round16_avx512(__m512 v, bfloat16*) {
    return _mm512_castsi512_ps(_mm512_and_si512(bf16_rounded_avx512(v), _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
}
template <class H>
__attribute__((target("avx512f"))) void round_avx512(float* x, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, round16_avx512(_mm512_loadu_ps(x + i), static_cast<H*>(nullptr)));
    for (; i < n; ++i) x[i] = to_f32(from_f32<H>(x[i]));
}

// The same three on AVX2 + F16C, eight lanes a vector (CPUs without AVX-512: Zen 3,
// say; before these, every f16/bf16 element there was converted by the scalar code).
// vcvtps2ph keeps a NaN's payload where the scalar conversion makes the plain quiet
// NaN of its sign, so a vector holding a NaN is narrowed by the scalar code.
template <class H>
__attribute__((target("avx2,fma,f16c"))) void widen_avx2(const H* src, float* dst, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, widen8_avx2(src + i));
    for (; i < n; ++i) dst[i] = to_f32(src[i]);
}
// widen_avx2 for bf16 on Zen 1: in a loop in L1, 9.7 G values/s against 5.0.
__attribute__((target("avx2,fma,f16c"))) inline void widen_zen1(const bfloat16* src, float* dst, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128 a, b;
        widen8_sse(src + i, a, b);
        _mm_storeu_ps(dst + i, a);
        _mm_storeu_ps(dst + i + 4, b);
    }
    for (; i < n; ++i) dst[i] = to_f32(src[i]);
}
__attribute__((target("avx2,fma,f16c"))) inline void widen_pred_avx2(const std::uint8_t* src, float* dst, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + i)));
        const __m256i zero = _mm256_cmpeq_epi32(b, _mm256_setzero_si256());
        _mm256_storeu_ps(dst + i, _mm256_andnot_ps(_mm256_castsi256_ps(zero), _mm256_set1_ps(1.0f)));
    }
    for (; i < n; ++i) dst[i] = src[i] ? 1.0f : 0.0f;
}
__attribute__((target("avx2,fma,f16c"))) inline bool narrow8_avx2(__m256 v, half* out) {
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) return false;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    return true;
}
// Eight f32 rounded to bf16 in their top halves (as bf16_rounded_avx512).
__attribute__((target("avx2,fma,f16c"))) inline __m256i bf16_rounded_avx2(__m256 v) {
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    return _mm256_blendv_epi8(r, _mm256_or_si256(bits, _mm256_set1_epi32(0x400000)), nan);
}
__attribute__((target("avx2,fma,f16c"))) inline bool narrow8_avx2(__m256 v, bfloat16* out) {
    const __m256i top = _mm256_srli_epi32(bf16_rounded_avx2(v), 16);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_packus_epi32(_mm256_castsi256_si128(top), _mm256_extracti128_si256(top, 1)));
    return true;
}
template <class H>
__attribute__((target("avx2,fma,f16c"))) void narrow_avx2(const float* src, H* dst, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        if (!narrow8_avx2(_mm256_loadu_ps(src + i), dst + i))
            for (int k = 0; k < 8; ++k) dst[i + k] = from_f32<H>(src[i + k]);
    for (; i < n; ++i) dst[i] = from_f32<H>(src[i]);
}
template <class H>
__attribute__((target("avx2,fma,f16c"))) void round_avx2(float* x, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        if constexpr (std::is_same_v<H, bfloat16>) {
            _mm256_storeu_ps(x + i, _mm256_castsi256_ps(_mm256_and_si256(bf16_rounded_avx2(v), _mm256_set1_epi32(static_cast<int>(0xffff0000u)))));
        } else {
            alignas(16) H h[8];
            if (narrow8_avx2(v, h)) _mm256_storeu_ps(x + i, widen8_avx2(h));
            else
                for (int k = 0; k < 8; ++k) x[i + k] = to_f32(from_f32<H>(x[i + k]));
        }
    }
    for (; i < n; ++i) x[i] = to_f32(from_f32<H>(x[i]));
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace detail

// dst[0:n] = src[0:n] widened to f32.
template <class H>
    requires(std::is_same_v<H, half> || std::is_same_v<H, bfloat16>)
void widen(const H* src, float* dst, std::int64_t n) {
#ifdef SCRIBE_X86
    if (detail::has_avx512f()) return detail::widen_avx512(src, dst, n);
    if constexpr (std::is_same_v<H, bfloat16>)
        if (detail::has_avx2_fma_f16c() && detail::is_zen1()) return detail::widen_zen1(src, dst, n);
    if (detail::has_avx2_fma_f16c()) return detail::widen_avx2(src, dst, n);
#endif
    for (std::int64_t i = 0; i < n; ++i) dst[i] = to_f32(src[i]);
}

// dst[0:n] = 1.0f where src[i] != 0, else 0.0f: pred values (a byte each) as f32,
// the form a select's condition takes in the fused kernel.
inline void widen_pred(const std::uint8_t* src, float* dst, std::int64_t n) {
#ifdef SCRIBE_X86
    if (detail::has_avx512f()) return detail::widen_pred_avx512(src, dst, n);
    if (detail::has_avx2_fma_f16c()) return detail::widen_pred_avx2(src, dst, n);
#endif
    for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i] ? 1.0f : 0.0f;
}

// dst[0:n] = src[0:n] rounded to the 16-bit type (nearest even).
template <class H>
    requires(std::is_same_v<H, half> || std::is_same_v<H, bfloat16>)
void narrow(const float* src, H* dst, std::int64_t n) {
#ifdef SCRIBE_X86
    if (detail::has_avx512f()) return detail::narrow_avx512(src, dst, n);
    if (detail::has_avx2_fma_f16c()) return detail::narrow_avx2(src, dst, n);
#endif
    for (std::int64_t i = 0; i < n; ++i) dst[i] = from_f32<H>(src[i]);
}

// x[0:n] replaced by the value its 16-bit rounding keeps.
template <class H>
    requires(std::is_same_v<H, half> || std::is_same_v<H, bfloat16>)
void round_through(float* x, std::int64_t n) {
#ifdef SCRIBE_X86
    if (detail::has_avx512f()) return detail::round_avx512<H>(x, n);
    if (detail::has_avx2_fma_f16c()) return detail::round_avx2<H>(x, n);
#endif
    for (std::int64_t i = 0; i < n; ++i) x[i] = to_f32(from_f32<H>(x[i]));
}

}  // namespace scribe::cpu::simd
