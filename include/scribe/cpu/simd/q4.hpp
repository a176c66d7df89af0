// scribe/cpu/simd/q4.hpp — 4-bit block weights (ops/quantize.hpp, llama.cpp's
// Q4_0): quantizing f32 rows into them, reading them back, and their products
// with q8 inputs in integers.
//
// A matrix W[n][k] is held as q (u8, [n][k / 32][16]) and scale (f16 bits,
// [n][k / 32]): byte i of a block holds element i in its low four bits and
// element 16 + i in its high four, and W[j][i] = (bits - 8) * scale[j][i / 32].
// A row streams 18 bytes per 32 weights. Its products read their input as q8
// blocks (x = qx * dx, simd/q8_q8.hpp), so
//   y[j] = sum over blocks b of (dx[b] * dw[j][b]) * (sum over the block of (bits - 8) * qx),
// an integer sum per block: with AVX-512 VNNI, vpdpbusd multiplies the unsigned
// four-bit values by qx directly and an accumulator that starts at -8 x the sum
// of qx takes the offset back exactly (see q4_input_vectors); with AVX2,
// vpmaddubsw does the same 32 pairs at a time and the offset is added back as
// int32 (see q4_input_pairs). Elsewhere the loops are plain C++.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "convert.hpp"
#include "q8_q8.hpp"

namespace scribe::cpu::simd {

inline constexpr std::int64_t q4_bytes = 16;  // of a block of 32 weights

// Quantizes rows [0, n) of w (row-major [n][k], k a multiple of 32) as llama.cpp's
// quantize_row_q4_0_ref does: per block, m = the first element of largest |w|,
// d = m / -8 and id = 1 / d (0 when d is 0) in f32, each element's bits
// min(15, trunc(w * id + 8.5)), the scale stored as f16(d). Returns the first
// row holding a value that does not quantize (a NaN or an infinity, or a block
// whose scale overflows f16: |w| above 8 * 65504), or -1.
inline std::int64_t quantize_q4_rows(const float* w, std::int64_t n, std::int64_t k, std::uint8_t* q, std::uint16_t* scale) {
    const auto blocks = k / 32;
    for (std::int64_t j = 0; j < n; ++j)
        for (std::int64_t b = 0; b < blocks; ++b) {
            const float* x = w + j * k + b * 32;
            float amax = 0.0f, m = 0.0f;
            for (int i = 0; i < 32; ++i) {
                if (!std::isfinite(x[i])) return j;
                if (amax < std::fabs(x[i])) {
                    amax = std::fabs(x[i]);
                    m = x[i];
                }
            }
            const float d = m / -8.0f;
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            const std::uint16_t h = f32_to_f16_bits(d);
            if ((h & 0x7c00u) == 0x7c00u) return j;
            scale[j * blocks + b] = h;
            auto bits = [&](float v) {
                const float t = v * id;  // (two statements: no fused multiply-add)
                const float u = t + 8.5f;
                // A subnormal d makes id infinite (the f16 scale is then 0, so every value
                // reads back as 0): such values become 0, as ggml's conversion of an
                // infinity gives on x86 and gguf's NumPy does.
                if (!std::isfinite(u)) return 0;
                return std::min(15, static_cast<int>(static_cast<std::int8_t>(u)));
            };
            std::uint8_t* out = q + (j * blocks + b) * q4_bytes;
            for (int i = 0; i < 16; ++i) out[i] = static_cast<std::uint8_t>(bits(x[i]) | (bits(x[16 + i]) << 4));
        }
    return -1;
}

namespace detail {

// Rows [0, n) of W as f32, row-major [n][k]: (bits - 8) * f32(scale), as the graph reads them.
inline void dequantize_q4_portable(const std::uint8_t* q, const std::uint16_t* scale, std::int64_t n, std::int64_t k, float* out) {
    const auto blocks = k / 32;
    for (std::int64_t j = 0; j < n * blocks; ++j) {
        const float d = f16_bits_to_f32(scale[j]);
        const std::uint8_t* in = q + j * q4_bytes;
        float* o = out + j * 32;
        for (int i = 0; i < 16; ++i) {
            o[i] = static_cast<float>((in[i] & 15) - 8) * d;
            o[16 + i] = static_cast<float>((in[i] >> 4) - 8) * d;
        }
    }
}

// y[j] for rows [0, n) of W and the q8 input qx[k], dx[k / 32].
inline void q4_q8_dots_portable(std::int64_t n, std::int64_t k, const std::int8_t* qx, const float* dx, const std::uint8_t* q,
                                const std::uint16_t* scale, float* y) {
    const auto blocks = k / 32;
    for (std::int64_t j = 0; j < n; ++j) {
        float acc = 0.0f;
        for (std::int64_t b = 0; b < blocks; ++b) {
            const std::uint8_t* w = q + (j * blocks + b) * q4_bytes;
            const std::int8_t* x = qx + b * 32;
            std::int32_t sum = 0;
            for (int i = 0; i < 16; ++i) sum += ((w[i] & 15) - 8) * std::int32_t{x[i]} + ((w[i] >> 4) - 8) * std::int32_t{x[16 + i]};
            acc += static_cast<float>(sum) * (dx[b] * f16_bits_to_f32(scale[j * blocks + b]));
        }
        y[j] = acc;
    }
}

#ifdef SCRIBE_X86
#if defined(__GNUC__) && !defined(__clang__)  // GCC's false positive inside its own intrinsics
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

// The same, a block (two vectors) at a time: the four-bit values widened to
// int32, less 8, converted (exactly) and multiplied by the scale.
__attribute__((target("avx512f"))) inline void dequantize_q4_avx512(const std::uint8_t* q, const std::uint16_t* scale, std::int64_t n,
                                                                   std::int64_t k, float* out) {
    const auto blocks = k / 32;
    const __m128i low = _mm_set1_epi8(15);
    const __m512i eight = _mm512_set1_epi32(8);
    for (std::int64_t j = 0; j < n * blocks; ++j) {
        const __m512 d = _mm512_set1_ps(f16_bits_to_f32(scale[j]));
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + j * q4_bytes));
        const __m128i lo = _mm_and_si128(b, low), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low);
        _mm512_storeu_ps(out + j * 32, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(lo), eight)), d));
        _mm512_storeu_ps(out + j * 32 + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(hi), eight)), d));
    }
}

// The input side of q4_q8_dots_avx512, made once per call. Four blocks of the
// weight are 64 bytes: masked to their low four bits, the 16-byte lanes hold
// elements 0-15 of each block; shifted down by four, elements 16-31. qx is laid
// out to match, per quad of blocks: 64 bytes of the blocks' elements 0-15, then
// 64 of their elements 16-31; and bias holds -8 x each 32-bit lane's eight qx
// (four from each half), so that two vpdpbusd of the unsigned four-bit values
// from bias give the sums of (bits - 8) * qx exactly, lanes 4b-4b+3 for block b
// of the quad. The blocks are padded with zeros to whole quads and dx to whole
// groups of 8.
struct q4_input_vectors {
    aligned_vector<std::int8_t> qx;     // [quads][128]
    aligned_vector<std::int32_t> bias;  // [quads][16]
    aligned_vector<float> dx;           // [groups][8]
};

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) inline void q4_input_vectors_of(std::int64_t k, const std::int8_t* qx,
                                                                                              const float* dx, q4_input_vectors& in) {
    const auto blocks = k / 32, quads = (blocks + 3) / 4, groups = (blocks + 7) / 8;
    in.qx.assign(static_cast<std::size_t>(128 * quads), 0);
    in.bias.assign(static_cast<std::size_t>(16 * quads), 0);
    in.dx.assign(static_cast<std::size_t>(8 * groups), 0.0f);
    std::copy(dx, dx + blocks, in.dx.data());
    for (std::int64_t b = 0; b < blocks; ++b) {
        std::int8_t* to = in.qx.data() + 128 * (b / 4) + 16 * (b % 4);
        std::memcpy(to, qx + 32 * b, 16);
        std::memcpy(to + 64, qx + 32 * b + 16, 16);
    }
    const __m512i eight = _mm512_set1_epi8(8);
    for (std::int64_t t = 0; t < quads; ++t) {
        const std::int8_t* x = in.qx.data() + 128 * t;
        const __m512i sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, _mm512_load_si512(x)), eight,
                                                 _mm512_load_si512(x + 64));
        _mm512_store_si512(in.bias.data() + 16 * t, _mm512_sub_epi32(_mm512_setzero_si512(), sums));
    }
}

// Lanes 4b-4b+3 of the result are s[4t + b]: the scales of quad t of a group of
// 8 blocks, as q4_q8_quad lays its sums.
__attribute__((target("avx512f"))) inline __m512i q4_quad_index(int t) {
    const int a = 4 * t;
    return _mm512_set_epi32(a + 3, a + 3, a + 3, a + 3, a + 2, a + 2, a + 2, a + 2, a + 1, a + 1, a + 1, a + 1, a, a, a, a);
}

// acc + one quad of blocks of a row times the input's (the first `count` blocks,
// count < 4 only at a row's end): 16 exact int32 sums as f32, times the quad's
// scales picked from s by `quad`.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) inline __m512 q4_q8_quad(__m512 acc, __m512i w, const std::int8_t* qx,
                                                                                     const std::int32_t* bias, __m512 s, __m512i quad) {
    const __m512i low = _mm512_set1_epi8(15);
    const __m512i lo = _mm512_and_si512(w, low), hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), low);
    const __m512i sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_load_si512(bias), lo, _mm512_load_si512(qx)), hi,
                                             _mm512_load_si512(qx + 64));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_permutexvar_ps(quad, s), acc);
}

// Rows are read in groups of 8 blocks (128 bytes and one 16-byte load of f16
// scales), prefetched ahead as the q8 kernels are. Per 4 blocks: one load, a
// shift, two masks, two vpdpbusd, a conversion, a permutation of the scales and
// a multiply-add (a pair of blocks per vector took 9 such operations per 2 blocks).
// Measured on this Zen 5 core: about 56 GB/s from L2 and 25-30 GB/s streaming
// GPT-2's matrices, where the q8 kernel streams 31-32 GB/s.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma"))) inline void q4_q8_dots_avx512(std::int64_t n, std::int64_t k,
                                                                                                     const std::int8_t* qx, const float* dx,
                                                                                                     const std::uint8_t* q,
                                                                                                     const std::uint16_t* scale, float* y) {
    const auto blocks = k / 32, whole = blocks / 8;
    q4_input_vectors in;
    q4_input_vectors_of(k, qx, dx, in);
    const __m512i t0 = q4_quad_index(0), t1 = q4_quad_index(1);
    for (std::int64_t j = 0; j < n; ++j) {
        const std::uint8_t* row = q + j * blocks * q4_bytes;
        const std::uint16_t* sr = scale + j * blocks;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        std::int64_t g = 0;
        for (; g < whole; ++g) {
            const auto* w = row + 128 * g;
            const auto* x = in.qx.data() + 256 * g;
            const auto* b = in.bias.data() + 32 * g;
            _mm_prefetch(reinterpret_cast<const char*>(w + q8_prefetch_ahead), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(w + q8_prefetch_ahead + 64), _MM_HINT_T0);
            const __m512 s = _mm512_castps256_ps512(_mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sr + 8 * g))),
                                                                  _mm256_load_ps(in.dx.data() + 8 * g)));
            a0 = q4_q8_quad(a0, _mm512_loadu_si512(w), x, b, s, t0);
            a1 = q4_q8_quad(a1, _mm512_loadu_si512(w + 64), x + 128, b + 16, s, t1);
        }
        if (const auto rest = blocks - 8 * g; rest > 0) {  // a last group of 1-7 blocks
            const auto m = static_cast<__mmask8>((1u << rest) - 1u);
            const __m512 s = _mm512_castps256_ps512(
                _mm256_mul_ps(_mm256_cvtph_ps(_mm_maskz_loadu_epi16(m, sr + 8 * g)), _mm256_load_ps(in.dx.data() + 8 * g)));
            for (std::int64_t t = 0; 4 * t < rest; ++t) {
                const auto count = std::min<std::int64_t>(4, rest - 4 * t);
                const auto bytes = ~std::uint64_t{0} >> (64 - 16 * count);
                const __m512i w = _mm512_maskz_loadu_epi8(static_cast<__mmask64>(bytes), row + 128 * g + 64 * t);
                a0 = q4_q8_quad(a0, w, in.qx.data() + 256 * g + 128 * t, in.bias.data() + 32 * g + 16 * t, s, t == 0 ? t0 : t1);
            }
        }
        y[j] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}

// AVX2: the same read-back, 8 lanes at a time (a block is four vectors).
__attribute__((target("avx2,fma,f16c"))) inline void dequantize_q4_half_avx2(float* o, __m128i bits, __m256 d) {
    const __m256i eight = _mm256_set1_epi32(8);
    _mm256_storeu_ps(o, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(bits), eight)), d));
    _mm256_storeu_ps(o + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(bits, 8)), eight)), d));
}

__attribute__((target("avx2,fma,f16c"))) inline void dequantize_q4_avx2(const std::uint8_t* q, const std::uint16_t* scale, std::int64_t n,
                                                                      std::int64_t k, float* out) {
    const auto blocks = k / 32;
    const __m128i low = _mm_set1_epi8(15);
    for (std::int64_t j = 0; j < n * blocks; ++j) {
        const __m256 d = _mm256_set1_ps(f16_bits_to_f32(scale[j]));
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + j * q4_bytes));
        dequantize_q4_half_avx2(out + j * 32, _mm_and_si128(b, low), d);
        dequantize_q4_half_avx2(out + j * 32 + 16, _mm_and_si128(_mm_srli_epi16(b, 4), low), d);
    }
}

// The input side of q4_q8_dots_avx2, made once per call. Two blocks of the weight
// are 32 bytes: masked to their low four bits, the 16-byte halves hold elements
// 0-15 of each block; shifted down by four, elements 16-31. qx is laid out to
// match, per pair of blocks: 32 bytes of the blocks' elements 0-15, then 32 of
// their elements 16-31; and bias holds -8 x the eight qx that each 32-bit lane
// of the pair's sums gathers (four from each half), so that lanes 0-3 are block
// 2p's and 4-7 block 2p + 1's sums of (bits - 8) * qx, exactly. The blocks are
// padded with zeros to whole pairs and dx to whole groups of 8.
struct q4_input_pairs {
    aligned_vector<std::int8_t> qx;     // [pairs][64]
    aligned_vector<std::int32_t> bias;  // [pairs][8]
    aligned_vector<float> dx;           // [groups][8]
};

inline void q4_input_pairs_of(std::int64_t k, const std::int8_t* qx, const float* dx, q4_input_pairs& in) {
    const auto blocks = k / 32, pairs = (blocks + 1) / 2, groups = (blocks + 7) / 8;
    in.qx.assign(static_cast<std::size_t>(64 * pairs), 0);
    in.bias.assign(static_cast<std::size_t>(8 * pairs), 0);
    in.dx.assign(static_cast<std::size_t>(8 * groups), 0.0f);
    std::copy(dx, dx + blocks, in.dx.data());
    for (std::int64_t b = 0; b < blocks; ++b) {
        std::int8_t* to = in.qx.data() + 64 * (b / 2) + 16 * (b % 2);
        std::memcpy(to, qx + 32 * b, 16);
        std::memcpy(to + 32, qx + 32 * b + 16, 16);
    }
    for (std::int64_t p = 0; p < pairs; ++p)
        for (int lane = 0; lane < 8; ++lane) {
            std::int32_t sum = 0;
            for (int i = 0; i < 4; ++i) sum += in.qx[static_cast<std::size_t>(64 * p + 4 * lane + i)] + in.qx[static_cast<std::size_t>(64 * p + 32 + 4 * lane + i)];
            in.bias[static_cast<std::size_t>(8 * p + lane)] = -8 * sum;
        }
}

// acc + a pair of blocks of a row times the input's: vpmaddubsw of the unsigned
// four-bit values (0-15) and qx (+-127) makes pair sums of at most 3810 in
// magnitude, two of them added in 16 bits at most 7620 (no saturation);
// vpmaddwd with ones makes them 8 exact int32 sums, the bias takes the offset
// back, and the lanes are multiplied by the pair's scales picked from s by `pair`.
__attribute__((target("avx2,fma,f16c"))) inline __m256 q4_q8_pair(__m256 acc, __m256i w, const std::int8_t* qx, const std::int32_t* bias,
                                                                __m256 s, __m256i pair) {
    const __m256i low = _mm256_set1_epi8(15);
    const __m256i lo = _mm256_and_si256(w, low), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), low);
    const __m256i sums16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_load_si256(reinterpret_cast<const __m256i*>(qx))),
                                            _mm256_maddubs_epi16(hi, _mm256_load_si256(reinterpret_cast<const __m256i*>(qx + 32))));
    const __m256i sums = _mm256_add_epi32(_mm256_madd_epi16(sums16, _mm256_set1_epi16(1)), _mm256_load_si256(reinterpret_cast<const __m256i*>(bias)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_permutevar8x32_ps(s, pair), acc);
}

// Rows are read in groups of 8 blocks (128 bytes and one 16-byte load of f16
// scales), prefetched ahead as the q8 kernels are: per 2 blocks, one load, a
// shift, two masks, two vpmaddubsw, an add, a vpmaddwd, the bias, a conversion,
// a permutation of the scales and a multiply-add.
__attribute__((target("avx2,fma,f16c"))) inline void q4_q8_dots_avx2(std::int64_t n, std::int64_t k, const std::int8_t* qx, const float* dx,
                                                                   const std::uint8_t* q, const std::uint16_t* scale, float* y) {
    const auto blocks = k / 32, whole = blocks / 8;
    q4_input_pairs in;
    q4_input_pairs_of(k, qx, dx, in);
    // Lanes 0-3 the scale of the pair's first block, 4-7 its second's.
    const __m256i p0 = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), p1 = _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3),
                  p2 = _mm256_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5), p3 = _mm256_setr_epi32(6, 6, 6, 6, 7, 7, 7, 7);
    for (std::int64_t j = 0; j < n; ++j) {
        const std::uint8_t* row = q + j * blocks * q4_bytes;
        const std::uint16_t* sr = scale + j * blocks;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        std::int64_t g = 0;
        for (; g < whole; ++g) {
            const auto* w = row + 128 * g;
            const auto* x = in.qx.data() + 256 * g;
            const auto* b = in.bias.data() + 32 * g;
            _mm_prefetch(reinterpret_cast<const char*>(w + q8_prefetch_ahead), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(w + q8_prefetch_ahead + 64), _MM_HINT_T0);
            const __m256 s = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sr + 8 * g))), _mm256_load_ps(in.dx.data() + 8 * g));
            a0 = q4_q8_pair(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)), x, b, s, p0);
            a1 = q4_q8_pair(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32)), x + 64, b + 8, s, p1);
            a0 = q4_q8_pair(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64)), x + 128, b + 16, s, p2);
            a1 = q4_q8_pair(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 96)), x + 192, b + 24, s, p3);
        }
        if (const auto rest = blocks - 8 * g; rest > 0) {  // a last group of 1-7 blocks
            alignas(16) std::uint16_t part[8] = {};
            std::memcpy(part, sr + 8 * g, static_cast<std::size_t>(rest) * 2);
            const __m256 s = _mm256_mul_ps(_mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(part))), _mm256_load_ps(in.dx.data() + 8 * g));
            const __m256i pairs[4] = {p0, p1, p2, p3};
            for (std::int64_t t = 0; 2 * t < rest; ++t) {
                const std::uint8_t* w = row + 128 * g + 32 * t;
                const __m256i wv = 2 * t + 1 < rest ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w))
                                                    : _mm256_inserti128_si256(_mm256_setzero_si256(), _mm_loadu_si128(reinterpret_cast<const __m128i*>(w)), 0);
                a0 = q4_q8_pair(a0, wv, in.qx.data() + 256 * g + 64 * t, in.bias.data() + 32 * g + 8 * t, s, pairs[t]);
            }
        }
        y[j] = hsum8_avx2(_mm256_add_ps(a0, a1));
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace detail

// Rows [0, n) of W as f32, row-major [n][k]: (bits - 8) * f32(scale), as the graph reads them.
inline void dequantize_q4_rows(const std::uint8_t* q, const std::uint16_t* scale, std::int64_t n, std::int64_t k, float* out) {
#ifdef SCRIBE_X86
    if (detail::has_avx512f()) return detail::dequantize_q4_avx512(q, scale, n, k, out);
    if (detail::has_avx2_fma_f16c()) return detail::dequantize_q4_avx2(q, scale, n, k, out);
#endif
    detail::dequantize_q4_portable(q, scale, n, k, out);
}

// y[0:n] = W[0:n] . x for W held as q4 blocks (q[n][k / 32][16], scale[n][k / 32])
// and x as the q8 input qx[k], dx[k / 32] (from q8_input_of).
inline void q4_q8_dots(std::int64_t n, std::int64_t k, const std::int8_t* qx, const float* dx, const std::uint8_t* q,
                       const std::uint16_t* scale, float* y) {
#ifdef SCRIBE_X86
    if (detail::has_avx512_vnni()) return detail::q4_q8_dots_avx512(n, k, qx, dx, q, scale, y);
    if (detail::has_avx2_fma_f16c()) return detail::q4_q8_dots_avx2(n, k, qx, dx, q, scale, y);
#endif
    detail::q4_q8_dots_portable(n, k, qx, dx, q, scale, y);
}

}  // namespace scribe::cpu::simd
