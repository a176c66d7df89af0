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
// vpdpbusd multiplies 64 pairs (qw offset to unsigned bytes, the offset taken
// back exactly in the accumulator; see q8_input_vectors); with AVX2, vpmaddubsw
// multiplies 32 (see q8_q8_dots_avx2).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
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

// q8_input_of, one element at a time.
inline bool q8_input_of_portable(const float* x, std::int64_t k, std::int8_t* qx, float* dx) {
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

// How far ahead of a row's stream the integer kernels prefetch: enough bytes in
// flight for one core to read near the memory's limit.
inline constexpr std::int64_t q8_prefetch_ahead = 4096;

// The input side of q8_q8_dots_avx512, made once per call. vpdpbusd multiplies
// unsigned bytes by signed ones; a weight byte w read as unsigned after XOR 0x80
// is w + 128, so sum (w + 128) qx = sum w qx + 128 sum qx, and an accumulator
// that starts at -128 sum qx (lane by lane) ends at the exact sum of w qx. This
// needs no per-row work on qx's signs (one XOR per vector instead of a masked
// negation and a mask register). qx is padded with zeros to whole 64-byte
// vectors and dx to whole groups of 8 blocks.
struct q8_input_vectors {
    aligned_vector<std::int8_t> qx;     // [vectors][64]
    aligned_vector<std::int32_t> bias;  // [vectors][16]: -128 x each lane's four qx
    aligned_vector<float> dx;           // [groups][8]
};

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) inline void q8_input_vectors_of(std::int64_t k, const std::int8_t* qx,
                                                                                              const float* dx, q8_input_vectors& in) {
    const auto blocks = k / 32, vecs = (blocks + 1) / 2, groups = (blocks + 7) / 8;
    in.qx.assign(static_cast<std::size_t>(64 * vecs), 0);
    in.bias.assign(static_cast<std::size_t>(16 * vecs), 0);
    in.dx.assign(static_cast<std::size_t>(8 * groups), 0.0f);
    std::copy(qx, qx + k, in.qx.data());
    std::copy(dx, dx + blocks, in.dx.data());
    const __m512i offset = _mm512_set1_epi8(static_cast<char>(0x80));
    for (std::int64_t v = 0; v < vecs; ++v) {
        const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset, _mm512_load_si512(in.qx.data() + 64 * v));
        _mm512_store_si512(in.bias.data() + 16 * v, _mm512_sub_epi32(_mm512_setzero_si512(), sums));
    }
}

// One 64-byte vector of a row (two blocks; the first only when !Whole) times the
// input's: 16 exact int32 sums (8 per block) as f32, times the pair's scales,
// lanes 0-7 and 8-15 of s picked by `pair`.
template <bool Whole>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) inline __m512 q8_q8_vector(const std::int8_t* w_at, const std::int8_t* qx,
                                                                                        const std::int32_t* bias, __m512 s, __m512i pair) {
    const __m512i w = Whole ? _mm512_loadu_si512(w_at) : _mm512_maskz_loadu_epi8(__mmask64{0xffffffffu}, w_at);
    const __m512i u = _mm512_xor_si512(w, _mm512_set1_epi8(static_cast<char>(0x80)));
    const __m512i sums = _mm512_dpbusd_epi32(_mm512_load_si512(bias), u, _mm512_load_si512(qx));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(sums), _mm512_permutexvar_ps(pair, s));
}

// Rows are read in groups of 8 blocks (256 bytes: four vectors, one 16-byte load
// of f16 scales), with a software prefetch 4 KiB ahead: it keeps enough of the
// stream in flight for one core to read near the memory's limit (the hardware
// prefetchers alone left this kernel at about 60-70 % of a plain read on Zen 5).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c"))) inline void q8_q8_dots_avx512(std::int64_t n, std::int64_t k,
                                                                                                 const std::int8_t* qx, const float* dx,
                                                                                                 const std::int8_t* q,
                                                                                                 const std::uint16_t* scale, float* y) {
    const auto blocks = k / 32, whole = blocks / 8;
    q8_input_vectors in;
    q8_input_vectors_of(k, qx, dx, in);
    const __m512i p0 = block_pair_index(0), p1 = block_pair_index(1), p2 = block_pair_index(2), p3 = block_pair_index(3);
    for (std::int64_t j = 0; j < n; ++j) {
        const std::int8_t* row = q + j * k;
        const std::uint16_t* sr = scale + j * blocks;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        std::int64_t g = 0;
        for (; g < whole; ++g) {
            const auto* w = row + 256 * g;
            const auto* x = in.qx.data() + 256 * g;
            const auto* b = in.bias.data() + 64 * g;
            for (int line = 0; line < 4; ++line) _mm_prefetch(reinterpret_cast<const char*>(w + q8_prefetch_ahead + 64 * line), _MM_HINT_T0);
            const __m512 s = _mm512_castps256_ps512(_mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sr + 8 * g))),
                                                                  _mm256_load_ps(in.dx.data() + 8 * g)));
            a0 = _mm512_add_ps(a0, q8_q8_vector<true>(w, x, b, s, p0));
            a1 = _mm512_add_ps(a1, q8_q8_vector<true>(w + 64, x + 64, b + 16, s, p1));
            a0 = _mm512_add_ps(a0, q8_q8_vector<true>(w + 128, x + 128, b + 32, s, p2));
            a1 = _mm512_add_ps(a1, q8_q8_vector<true>(w + 192, x + 192, b + 48, s, p3));
        }
        if (const auto rest = blocks - 8 * g; rest > 0) {  // a last group of 1-7 blocks
            const auto m = static_cast<__mmask8>((1u << rest) - 1u);
            const __m512 s = _mm512_castps256_ps512(
                _mm256_mul_ps(_mm256_cvtph_ps(_mm_maskz_loadu_epi16(m, sr + 8 * g)), _mm256_load_ps(in.dx.data() + 8 * g)));
            const __m512i pairs[4] = {p0, p1, p2, p3};
            for (std::int64_t t = 0; 2 * t < rest; ++t) {
                const auto v = 4 * g + t;
                const auto* w = row + 64 * v;
                const auto* x = in.qx.data() + 64 * v;
                const auto* b = in.bias.data() + 16 * v;
                a0 = _mm512_add_ps(a0, 2 * t + 1 < rest ? q8_q8_vector<true>(w, x, b, s, pairs[t]) : q8_q8_vector<false>(w, x, b, s, pairs[t]));
            }
        }
        y[j] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}

// q8_input_of, a block (two vectors) at a time: the same d per block (its f16
// rounding in scalar code), the same rounding (to nearest even) and clamping,
// and the same test of every element. A NaN anywhere makes the input not one.
__attribute__((target("avx512f"))) inline bool q8_input_of_avx512(const float* x, std::int64_t k, std::int8_t* qx, float* dx) {
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (std::int64_t b = 0; b < k / 32; ++b) {
        const __m512 v0 = _mm512_loadu_ps(x + b * 32), v1 = _mm512_loadu_ps(x + b * 32 + 16);
        if (_mm512_cmp_ps_mask(v0, v0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v1, v1, _CMP_UNORD_Q)) return false;
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float d = f16_bits_to_f32(f32_to_f16_bits(amax / 127.0f));
        if (!std::isfinite(d)) return false;
        const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f), vd = _mm512_set1_ps(d);
        const __m512 q0 = _mm512_min_ps(_mm512_max_ps(_mm512_roundscale_ps(_mm512_mul_ps(v0, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), lo), hi);
        const __m512 q1 = _mm512_min_ps(_mm512_max_ps(_mm512_roundscale_ps(_mm512_mul_ps(v1, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), lo), hi);
        if ((_mm512_cmp_ps_mask(_mm512_mul_ps(q0, vd), v0, _CMP_EQ_OQ) & _mm512_cmp_ps_mask(_mm512_mul_ps(q1, vd), v1, _CMP_EQ_OQ)) != 0xffff)
            return false;
        _mm_storeu_si128(reinterpret_cast<__m128i*>(qx + b * 32), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(q0)));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(qx + b * 32 + 16), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(q1)));
        dx[b] = d;
    }
    return true;
}

// q8_read_back_blocks and q8_input_of with AVX2: the same arithmetic, a block
// four vectors. The largest |x| of a block's four vectors (a NaN among them is
// looked for apart).
__attribute__((target("avx2,fma,f16c"))) inline float block_amax_avx2(const __m256* v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                                   _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
    const __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    const __m128 q = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(q, _mm_movehdup_ps(q)));
}

__attribute__((target("avx2,fma,f16c"))) inline bool block_has_nan_avx2(const __m256* v) {
    const __m256 n = _mm256_or_ps(_mm256_or_ps(_mm256_cmp_ps(v[0], v[0], _CMP_UNORD_Q), _mm256_cmp_ps(v[1], v[1], _CMP_UNORD_Q)),
                                  _mm256_or_ps(_mm256_cmp_ps(v[2], v[2], _CMP_UNORD_Q), _mm256_cmp_ps(v[3], v[3], _CMP_UNORD_Q)));
    return _mm256_movemask_ps(n) != 0;
}

__attribute__((target("avx2,fma,f16c"))) inline __m256 q8_read_back_avx2(__m256 v, float id, float d16) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 x = _mm256_mul_ps(v, _mm256_set1_ps(id));
    const __m256 a = _mm256_andnot_ps(sign, x);
    const __m256 f = _mm256_round_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m256 up = _mm256_round_ps(_mm256_mul_ps(_mm256_sub_ps(a, f), _mm256_set1_ps(2.0f)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m256 finite = _mm256_cmp_ps(a, _mm256_set1_ps(std::numeric_limits<float>::infinity()), _CMP_LT_OQ);
    const __m256 q = _mm256_or_ps(_mm256_add_ps(f, up), _mm256_and_ps(x, sign));
    // + 0 makes a -0 the 0 an int8 holds; other values are whole numbers and stay.
    return _mm256_mul_ps(_mm256_add_ps(_mm256_and_ps(finite, q), _mm256_setzero_ps()), _mm256_set1_ps(d16));
}

__attribute__((target("avx2,fma,f16c"))) inline void q8_read_back_blocks_avx2(const float* x, std::int64_t n, float* out) {
    for (std::int64_t b = 0; b < n; ++b) {
        __m256 v[4];
        for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_ps(x + b * 32 + 8 * i);
        const float amax = block_has_nan_avx2(v) ? std::numeric_limits<float>::quiet_NaN() : block_amax_avx2(v);
        const float d = amax / 127.0f;
        const float id = d == 0.0f ? 0.0f : 1.0f / d;
        const float d16 = f16_bits_to_f32(f32_to_f16_bits(d));
        for (int i = 0; i < 4; ++i) _mm256_storeu_ps(out + b * 32 + 8 * i, q8_read_back_avx2(v[i], id, d16));
    }
}

__attribute__((target("avx2,fma,f16c"))) inline bool q8_input_of_avx2(const float* x, std::int64_t k, std::int8_t* qx, float* dx) {
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    for (std::int64_t b = 0; b < k / 32; ++b) {
        __m256 v[4];
        for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_ps(x + b * 32 + 8 * i);
        if (block_has_nan_avx2(v)) return false;
        const float d = f16_bits_to_f32(f32_to_f16_bits(block_amax_avx2(v) / 127.0f));
        if (!std::isfinite(d)) return false;
        const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f), vd = _mm256_set1_ps(d);
        __m256i q[4];
        int same = 0xff;
        for (int i = 0; i < 4; ++i) {
            const __m256 r = _mm256_min_ps(_mm256_max_ps(_mm256_round_ps(_mm256_mul_ps(v[i], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), lo), hi);
            same &= _mm256_movemask_ps(_mm256_cmp_ps(_mm256_mul_ps(r, vd), v[i], _CMP_EQ_OQ));
            q[i] = _mm256_cvtps_epi32(r);
        }
        if (same != 0xff) return false;
        // The packs interleave 4-lane quarters; the permutation puts them back in order.
        const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(qx + b * 32), _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
        dx[b] = d;
    }
    return true;
}

// AVX2: per block, vpmaddubsw of |qw| (unsigned, so -128 is 128) and qx
// carrying qw's sign (vpsignb; qx is within +-127) gives 16 pair sums, each at
// most 2 x 128 x 127 in magnitude (no saturation); vpmaddwd with ones makes them
// 8 exact int32 sums. Prefetched 4 KiB ahead as the AVX-512 kernel is. 1.8x the
// f32 AVX2 kernel of simd/q8.hpp on this input (24 against 14 GB/s, Zen 5).
__attribute__((target("avx2,fma,f16c"))) inline void q8_q8_dots_avx2(std::int64_t n, std::int64_t k, const std::int8_t* qx, const float* dx,
                                                                   const std::int8_t* q, const std::uint16_t* scale, float* y) {
    const auto blocks = k / 32, groups = (blocks + 7) / 8;
    aligned_vector<float> dxs(static_cast<std::size_t>(8 * groups), 0.0f);
    std::copy(dx, dx + blocks, dxs.data());
    const __m256i ones = _mm256_set1_epi16(1);
    for (std::int64_t j = 0; j < n; ++j) {
        const std::int8_t* row = q + j * k;
        const std::uint16_t* sr = scale + j * blocks;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (std::int64_t g = 0; g < groups; ++g) {
            alignas(16) std::uint16_t part[8] = {};
            const auto nb = std::min<std::int64_t>(8, blocks - 8 * g);
            const std::uint16_t* s8 = sr + 8 * g;
            if (nb < 8) s8 = static_cast<const std::uint16_t*>(std::memcpy(part, s8, static_cast<std::size_t>(nb) * 2));
            for (int line = 0; line < 4; ++line) _mm_prefetch(reinterpret_cast<const char*>(row + 256 * g + q8_prefetch_ahead + 64 * line), _MM_HINT_T0);
            const __m256 s = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s8))), _mm256_load_ps(dxs.data() + 8 * g));
            for (std::int64_t t = 0; t < nb; ++t) {
                const auto b = 8 * g + t;
                const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 32 * b));
                const __m256i x = _mm256_sign_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx + 32 * b)), w);
                const __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(w), x);
                const __m256 sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
                const __m256 d = _mm256_permutevar8x32_ps(s, _mm256_set1_epi32(static_cast<int>(t)));
                if (t & 1) a1 = _mm256_fmadd_ps(sums, d, a1);
                else a0 = _mm256_fmadd_ps(sums, d, a0);
            }
        }
        const __m256 a = _mm256_add_ps(a0, a1);
        const __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        const __m128 h2 = _mm_add_ps(h, _mm_movehl_ps(h, h));
        y[j] = _mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)));
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace detail

// qx[0:k] and dx[0:k/32] from x[0:k] when x is a q8 input: per block, d = the
// f16 value nearest max |x| / 127, qx = x / d, and every x equal to qx * d in f32
// (as the graph made it: the largest element is +-127 d). False otherwise (x is
// then not on a grid of q8 blocks, or holds a NaN or an infinity).
inline bool q8_input_of(const float* x, std::int64_t k, std::int8_t* qx, float* dx) {
#ifdef SCRIBE_X86
    if (detail::has_avx512f()) return detail::q8_input_of_avx512(x, k, qx, dx);
    if (detail::has_avx2_fma_f16c()) return detail::q8_input_of_avx2(x, k, qx, dx);
#endif
    return detail::q8_input_of_portable(x, k, qx, dx);
}

// Blocks [0, n) of 32 values of x quantized and read back as ops/quantize.hpp's
// quantize_input does (detail::q8_read_back_portable says how).
inline void q8_read_back_blocks(const float* x, std::int64_t n, float* out) {
#ifdef SCRIBE_X86
    if (detail::has_avx512f()) return detail::q8_read_back_blocks_avx512(x, n, out);
    if (detail::has_avx2_fma_f16c()) return detail::q8_read_back_blocks_avx2(x, n, out);
#endif
    detail::q8_read_back_portable(x, n, out);
}

// Whether q8_q8_dots runs integer SIMD here (AVX-512 VNNI or AVX2); elsewhere
// the f32 products of simd/q8.hpp are the faster way to the same values.
inline bool q8_q8_fast() {
#ifdef SCRIBE_X86
    return detail::has_avx512_vnni() || detail::has_avx2_fma_f16c();
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
    if (detail::has_avx2_fma_f16c()) return detail::q8_q8_dots_avx2(n, k, qx, dx, q, scale, y);
#endif
    detail::q8_q8_dots_portable(n, k, qx, dx, q, scale, y);
}

}  // namespace scribe::cpu::simd
