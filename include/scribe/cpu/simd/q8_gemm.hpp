// scribe/cpu/simd/q8_gemm.hpp — many rows of q8 input times q8 or q4 weights
// packed sixteen rows to a vector, in integers: the GEMM of a prefill.
//
// As in simd/q8_q8.hpp, x = qx * dx (q8 blocks) and a weight block is
// (u - off) * dw with u unsigned bytes (q8: u = w + 128; q4: u = the nibble,
// off = 8), so
//   y[m][j] = sum over blocks b of (dx[m][b] dw[j][b]) (sum over the block of u qx - off sum qx),
// an exact int32 per block and one f32 multiply-add.
//
// The weight's rows are packed (q8_panel) so that one
// 64-byte vector holds four consecutive bytes of sixteen rows: vpdpbusd of that
// vector with four bytes of one input row broadcast adds sixteen rows' partial
// sums at once, lane j for row j, with no horizontal sums. A block is eight such
// steps; its accumulators start at -off sum qx (a broadcast per input row and
// block), then are widened to f32 and scaled. The tile of 4 input rows by 32
// weight rows keeps 8 integer and 8 f32 accumulators in registers, and the
// packed panel of 32 rows is read from L1 (or L2) for every 4 input rows. A
// q4 panel keeps the nibbles packed (18 bytes per 32 weights, as stored): a
// vector holds four bytes of sixteen rows for two steps, s in the low and s + 4
// in the high four bits, split in registers. Scales stay f16. (Packed once and
// streamed, the same kernel with one input row was no faster than the row-by-row
// products of simd/q8_q8.hpp, which read the weight as stored at about 90 % of
// a plain read on Zen 5: decode stays there.)
// llama.cpp's repacked Q4_0x8 GEMM (ggml-cpu/repack.cpp) interleaves 8 rows
// the same way for the same reason. Without VNNI, the AVX2 kernel reads a
// step's 64 bytes as two vectors of 8 rows and multiplies with vpmaddubsw.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "convert.hpp"
#include "q8_q8.hpp"
#include "transpose.hpp"

#if defined(__GNUC__) && !defined(__clang__)  // GCC's false positive inside its own intrinsics (x86 code below)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace scribe::cpu::simd {

// Rows [0, cols) of a weight, packed: w[tile][block][step][16 rows][4 bytes]
// (q8: unsigned bytes u; q4: steps 0-3 only, step s + 4 in the high nibbles;
// rows past cols hold 0) and s[tile][block][16] (f16 bits of the scales; 0 past
// cols). A tile is 16 rows, a block 32 weights, a step 4.
struct q8_panel {
    aligned_vector<std::uint8_t> w;
    aligned_vector<std::uint16_t> s;
    std::int64_t cols = 0, tiles = 0, blocks = 0;
    std::int32_t offset = 0;  // off: 128 (q8) or 8 (q4)
    bool nibbles = false;     // q4
    std::int64_t block_bytes() const { return nibbles ? 256 : 512; }  // of a tile
    std::size_t bytes() const { return w.size() + 2 * s.size(); }
};

// The input side: rows of qx ([rows][k], within +-127 as q8_input_of makes them)
// and dx ([rows][k / 32]), and for the offset of a panel the accumulators'
// starts bias[m][b] = -off x the sum of the block's qx.
struct q8_gemm_input {
    const std::int8_t* qx = nullptr;
    const float* dx = nullptr;
    std::int64_t rows = 0, k = 0;
    std::vector<std::int32_t> bias;

    q8_gemm_input(const std::int8_t* q, const float* d, std::int64_t m, std::int64_t kk, std::int32_t offset) : qx(q), dx(d), rows(m), k(kk) {
        const auto blocks = k / 32;
        bias.resize(static_cast<std::size_t>(rows * blocks));
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t b = 0; b < blocks; ++b) {
                std::int32_t sum = 0;
                for (int i = 0; i < 32; ++i) sum += qx[r * k + b * 32 + i];
                bias[static_cast<std::size_t>(r * blocks + b)] = -offset * sum;
            }
    }
};

namespace detail {

inline void q8_panel_shape(std::int64_t n, std::int64_t k, bool nibbles, q8_panel& p) {
    p.cols = n;
    p.tiles = (n + 15) / 16;
    p.blocks = k / 32;
    p.offset = nibbles ? 8 : 128;
    p.nibbles = nibbles;
    p.w.assign(static_cast<std::size_t>(p.tiles * p.blocks * p.block_bytes()), 0);
    p.s.assign(static_cast<std::size_t>(p.tiles * p.blocks * 16), 0);
}

// The byte of block b of packed row j (j < 16 within its tile) holding element
// i (q4: in its low four bits for i % 32 < 16, else its high).
inline std::size_t q8_panel_at(const q8_panel& p, std::int64_t j, std::int64_t b, int i) {
    const int step = p.nibbles ? (i / 4) % 4 : i / 4;
    return static_cast<std::size_t>(((j / 16) * p.blocks + b) * p.block_bytes() + step * 64 + (j % 16) * 4 + i % 4);
}

inline std::size_t q8_panel_scale_at(const q8_panel& p, std::int64_t j, std::int64_t b) {
    return static_cast<std::size_t>(((j / 16) * p.blocks + b) * 16 + j % 16);
}

}  // namespace detail

namespace detail {

// The packing one row and block at a time (the rows of a last partial tile).
inline void pack_q8_rows(const std::int8_t* q, const std::uint16_t* scale, std::int64_t j0, std::int64_t j1, std::int64_t k, q8_panel& p) {
    for (std::int64_t j = j0; j < j1; ++j)
        for (std::int64_t b = 0; b < p.blocks; ++b) {
            const std::int8_t* src = q + j * k + b * 32;
            for (int step = 0; step < 8; ++step) {
                std::uint32_t word;
                std::memcpy(&word, src + 4 * step, 4);
                word ^= 0x80808080u;  // w + 128 in each byte
                std::memcpy(p.w.data() + q8_panel_at(p, j, b, 4 * step), &word, 4);
            }
            p.s[q8_panel_scale_at(p, j, b)] = scale[j * p.blocks + b];
        }
}

inline void pack_q4_rows(const std::uint8_t* q, const std::uint16_t* scale, std::int64_t j0, std::int64_t j1, q8_panel& p) {
    for (std::int64_t j = j0; j < j1; ++j)
        for (std::int64_t b = 0; b < p.blocks; ++b) {
            const std::uint8_t* src = q + (j * p.blocks + b) * 16;
            for (int step = 0; step < 4; ++step) std::memcpy(p.w.data() + q8_panel_at(p, j, b, 4 * step), src + 4 * step, 4);
            p.s[q8_panel_scale_at(p, j, b)] = scale[j * p.blocks + b];
        }
}

#ifdef SCRIBE_X86
// The sixteen rows' f16 scales of block b of a tile.
__attribute__((target("avx512f"))) inline void pack_scales_avx512(const std::uint16_t* scale, std::int64_t blocks, std::uint16_t* out) {
    const __m512i rows = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(static_cast<int>(blocks)));
    _mm256_store_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(_mm512_i32gather_epi32(rows, scale, 2)));
}

// Whole tiles: per block, sixteen rows of 32 bytes (eight vectors, rows i and
// i + 8 in each) transposed as 8 x 8 dwords in each half, so that vector s
// holds bytes 4s..4s+3 of rows 0-15.
__attribute__((target("avx512f"))) inline void pack_q8_tiles_avx512(const std::int8_t* q, const std::uint16_t* scale, std::int64_t tiles,
                                                                        std::int64_t k, q8_panel& p) {
    const __m512i flip = _mm512_set1_epi32(static_cast<int>(0x80808080u));
    for (std::int64_t t = 0; t < tiles; ++t)
        for (std::int64_t b = 0; b < p.blocks; ++b) {
            const std::int8_t* src = q + 16 * t * k + 32 * b;
            __m512i v[8];
            SCRIBE_UNROLL
            for (int i = 0; i < 8; ++i)
                v[i] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i * k))),
                                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + (i + 8) * k)), 1);
            transpose_stage<2>(v[0], v[4]), transpose_stage<2>(v[1], v[5]), transpose_stage<2>(v[2], v[6]), transpose_stage<2>(v[3], v[7]);
            transpose_stage<1>(v[0], v[2]), transpose_stage<1>(v[1], v[3]), transpose_stage<1>(v[4], v[6]), transpose_stage<1>(v[5], v[7]);
            transpose_stage<0>(v[0], v[1]), transpose_stage<0>(v[2], v[3]), transpose_stage<0>(v[4], v[5]), transpose_stage<0>(v[6], v[7]);
            auto* dst = p.w.data() + (t * p.blocks + b) * 512;
            SCRIBE_UNROLL
            for (int step = 0; step < 8; ++step) _mm512_store_si512(dst + 64 * step, _mm512_xor_si512(v[step], flip));
            pack_scales_avx512(scale + 16 * t * p.blocks + b, p.blocks, p.s.data() + (t * p.blocks + b) * 16);
        }
}

// Whole tiles: per block, sixteen rows of 16 bytes (four vectors, rows i, i + 4,
// i + 8 and i + 12 in each) transposed as 4 x 4 dwords in each quarter; vector s
// then holds bytes 4s..4s+3 of rows 0-15 (steps s and s + 4).
__attribute__((target("avx512f"))) inline void pack_q4_tiles_avx512(const std::uint8_t* q, const std::uint16_t* scale, std::int64_t tiles,
                                                                        q8_panel& p) {
    const auto row = 16 * p.blocks;  // bytes of a row of q
    for (std::int64_t t = 0; t < tiles; ++t)
        for (std::int64_t b = 0; b < p.blocks; ++b) {
            const std::uint8_t* src = q + 16 * t * row + 16 * b;
            __m512i v[4];
            SCRIBE_UNROLL
            for (int i = 0; i < 4; ++i) {
                const auto at = [&](int r) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + r * row)); };
                v[i] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(at(i + 4), at(i))), _mm256_set_m128i(at(i + 12), at(i + 8)), 1);
            }
            transpose_stage<1>(v[0], v[2]), transpose_stage<1>(v[1], v[3]);
            transpose_stage<0>(v[0], v[1]), transpose_stage<0>(v[2], v[3]);
            auto* dst = p.w.data() + (t * p.blocks + b) * 256;
            SCRIBE_UNROLL
            for (int step = 0; step < 4; ++step) _mm512_store_si512(dst + 64 * step, v[step]);
            pack_scales_avx512(scale + 16 * t * p.blocks + b, p.blocks, p.s.data() + (t * p.blocks + b) * 16);
        }
}
#endif

#ifdef SCRIBE_X86
// The same with AVX2: per block, each 8 rows (rows i and i + 4 in a vector)
// transposed as 4 x 4 dwords in each half, so that vector s holds word s of the
// 8 rows: the step's half for those rows.
__attribute__((target("avx2"))) inline void pack_q4_tiles_avx2(const std::uint8_t* q, const std::uint16_t* scale, std::int64_t tiles, q8_panel& p) {
    const auto row = 16 * p.blocks;  // bytes of a row of q
    for (std::int64_t t = 0; t < tiles; ++t)
        for (std::int64_t b = 0; b < p.blocks; ++b) {
            auto* dst = p.w.data() + (t * p.blocks + b) * 256;
            for (int g = 0; g < 2; ++g) {
                const std::uint8_t* src = q + (16 * t + 8 * g) * row + 16 * b;
                __m256i v[4];
                SCRIBE_UNROLL
                for (int i = 0; i < 4; ++i)
                    v[i] = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(src + (i + 4) * row), reinterpret_cast<const __m128i*>(src + i * row));
                const __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]), t1 = _mm256_unpacklo_epi32(v[2], v[3]);
                const __m256i t2 = _mm256_unpackhi_epi32(v[0], v[1]), t3 = _mm256_unpackhi_epi32(v[2], v[3]);
                _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 32 * g), _mm256_unpacklo_epi64(t0, t1));
                _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 64 + 32 * g), _mm256_unpackhi_epi64(t0, t1));
                _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 128 + 32 * g), _mm256_unpacklo_epi64(t2, t3));
                _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 192 + 32 * g), _mm256_unpackhi_epi64(t2, t3));
            }
            for (int j = 0; j < 16; ++j) p.s[static_cast<std::size_t>((t * p.blocks + b) * 16 + j)] = scale[(16 * t + j) * p.blocks + b];
        }
}
#endif

}  // namespace detail

// Rows [0, n) of a q8 weight (q[n][k] s8, scale[n][k / 32] f16 bits) packed into p.
inline void pack_q8_panel(const std::int8_t* q, const std::uint16_t* scale, std::int64_t n, std::int64_t k, q8_panel& p) {
    detail::q8_panel_shape(n, k, false, p);
    std::int64_t whole = 0;
#ifdef SCRIBE_X86
    if (detail::has_avx512f()) {
        whole = n / 16;
        detail::pack_q8_tiles_avx512(q, scale, whole, k, p);
    }
#endif
    detail::pack_q8_rows(q, scale, 16 * whole, n, k, p);
}

// Rows [0, n) of a q4 weight (q[n][k / 32][16] u8 nibbles, simd/q4.hpp) packed into p.
inline void pack_q4_panel(const std::uint8_t* q, const std::uint16_t* scale, std::int64_t n, std::int64_t k, q8_panel& p) {
    detail::q8_panel_shape(n, k, true, p);
    std::int64_t whole = 0;
#ifdef SCRIBE_X86
    if (detail::has_avx512f()) {
        whole = n / 16;
        detail::pack_q4_tiles_avx512(q, scale, whole, p);
    } else if (detail::has_avx2_fma_f16c()) {
        whole = n / 16;
        detail::pack_q4_tiles_avx2(q, scale, whole, p);
    }
#endif
    detail::pack_q4_rows(q, scale, 16 * whole, n, p);
}

namespace detail {

// y[m][j], one element at a time.
inline void q8_gemm_portable(const q8_gemm_input& in, const q8_panel& p, float* y, std::int64_t ldy) {
    for (std::int64_t m = 0; m < in.rows; ++m)
        for (std::int64_t j = 0; j < p.cols; ++j) {
            float acc = 0.0f;
            for (std::int64_t b = 0; b < p.blocks; ++b) {
                std::int32_t sum = in.bias[static_cast<std::size_t>(m * p.blocks + b)];
                for (int i = 0; i < 32; ++i) {
                    const auto byte = p.w[q8_panel_at(p, j, b, i)];
                    const int u = !p.nibbles ? byte : i < 16 ? (byte & 15) : (byte >> 4);
                    sum += u * in.qx[m * in.k + b * 32 + i];
                }
                acc += static_cast<float>(sum) * (f16_bits_to_f32(p.s[q8_panel_scale_at(p, j, b)]) * in.dx[m * p.blocks + b]);
            }
            y[m * ldy + j] = acc;
        }
}

// R input rows from m: their q8 values, the accumulators' starts and the scales.
template <int R>
struct q8_input_rows {
    const std::int8_t* x[R];
    const std::int32_t* bias[R];
    const float* dx[R];
    q8_input_rows(const q8_gemm_input& in, std::int64_t m) {
        const auto blocks = in.k / 32;
        for (int r = 0; r < R; ++r) {
            x[r] = in.qx + (m + r) * in.k;
            bias[r] = in.bias.data() + (m + r) * blocks;
            dx[r] = in.dx + (m + r) * blocks;
        }
    }
};

#ifdef SCRIBE_X86
// R input rows (from m) by C tiles (from tile t) of y; `mask` picks the lanes of
// the last tile that are rows of the weight. Q4: a vector holds steps s (low
// nibbles) and s + 4 (high).
template <int R, int C, bool Q4>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c"))) inline void q8_gemm_tile_avx512(const q8_gemm_input& in,
                                                                                                       const q8_panel& p, std::int64_t m,
                                                                                                       std::int64_t t, float* y, std::int64_t ldy,
                                                                                                       __mmask16 mask) {
    constexpr std::int64_t bb = Q4 ? 256 : 512;  // bytes of a block of a tile
    const auto blocks = p.blocks;
    __m512 f[R][C];
    SCRIBE_UNROLL
    for (int r = 0; r < R; ++r)
        SCRIBE_UNROLL
        for (int c = 0; c < C; ++c) f[r][c] = _mm512_setzero_ps();
    const std::uint8_t* w[C];
    const std::uint16_t* s[C];
    SCRIBE_UNROLL
    for (int c = 0; c < C; ++c) {
        w[c] = p.w.data() + (t + c) * blocks * bb;
        s[c] = p.s.data() + (t + c) * blocks * 16;
    }
    const auto [x, bias, dx] = q8_input_rows<R>(in, m);
    const __m512i nibble = _mm512_set1_epi8(0x0f);
    for (std::int64_t b = 0; b < blocks; ++b) {
        __m512i a[R][C];
        SCRIBE_UNROLL
        for (int r = 0; r < R; ++r) {
            const __m512i start = _mm512_set1_epi32(bias[r][b]);
            SCRIBE_UNROLL
            for (int c = 0; c < C; ++c) a[r][c] = start;
        }
        SCRIBE_UNROLL
        for (int step = 0; step < (Q4 ? 4 : 8); ++step) {
            __m512i wv[C], hv[C];
            SCRIBE_UNROLL
            for (int c = 0; c < C; ++c) {
                wv[c] = _mm512_load_si512(w[c] + b * bb + step * 64);
                if constexpr (Q4) {
                    hv[c] = _mm512_and_si512(_mm512_srli_epi16(wv[c], 4), nibble);
                    wv[c] = _mm512_and_si512(wv[c], nibble);
                }
            }
            SCRIBE_UNROLL
            for (int r = 0; r < R; ++r) {
                std::int32_t four;
                std::memcpy(&four, x[r] + b * 32 + 4 * step, 4);
                const __m512i xv = _mm512_set1_epi32(four);
                SCRIBE_UNROLL
                for (int c = 0; c < C; ++c) a[r][c] = _mm512_dpbusd_epi32(a[r][c], wv[c], xv);
                if constexpr (Q4) {
                    std::memcpy(&four, x[r] + b * 32 + 16 + 4 * step, 4);
                    const __m512i xh = _mm512_set1_epi32(four);
                    SCRIBE_UNROLL
                    for (int c = 0; c < C; ++c) a[r][c] = _mm512_dpbusd_epi32(a[r][c], hv[c], xh);
                }
            }
        }
        SCRIBE_UNROLL
        for (int c = 0; c < C; ++c) {
            const __m512 sv = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(s[c] + b * 16)));
            SCRIBE_UNROLL
            for (int r = 0; r < R; ++r)
                f[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[r][c]), _mm512_mul_ps(sv, _mm512_set1_ps(dx[r][b])), f[r][c]);
        }
    }
    SCRIBE_UNROLL
    for (int r = 0; r < R; ++r)
        SCRIBE_UNROLL
        for (int c = 0; c < C; ++c) {
            float* out = y + (m + r) * ldy + (t + c) * 16;
            if (c == C - 1) _mm512_mask_storeu_ps(out, mask, f[r][c]);
            else _mm512_storeu_ps(out, f[r][c]);
        }
}

// Every input row by C tiles from tile t.
template <int C, bool Q4>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c"))) inline void q8_gemm_tiles_avx512(const q8_gemm_input& in,
                                                                                                        const q8_panel& p, std::int64_t t,
                                                                                                        float* y, std::int64_t ldy,
                                                                                                        __mmask16 mask) {
    std::int64_t m = 0;
    for (; m + 4 <= in.rows; m += 4) q8_gemm_tile_avx512<4, C, Q4>(in, p, m, t, y, ldy, mask);
    switch (in.rows - m) {
    case 3: q8_gemm_tile_avx512<3, C, Q4>(in, p, m, t, y, ldy, mask); break;
    case 2: q8_gemm_tile_avx512<2, C, Q4>(in, p, m, t, y, ldy, mask); break;
    case 1: q8_gemm_tile_avx512<1, C, Q4>(in, p, m, t, y, ldy, mask); break;
    default: break;
    }
}

template <bool Q4>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c"))) inline void q8_gemm_avx512(const q8_gemm_input& in, const q8_panel& p,
                                                                                                  float* y, std::int64_t ldy) {
    const auto tail = p.cols - 16 * (p.tiles - 1);
    const auto last = static_cast<__mmask16>((1u << tail) - 1u);
    std::int64_t t = 0;
    for (; t + 2 <= p.tiles; t += 2) q8_gemm_tiles_avx512<2, Q4>(in, p, t, y, ldy, t + 2 == p.tiles ? last : __mmask16{0xffff});
    if (t < p.tiles) q8_gemm_tiles_avx512<1, Q4>(in, p, t, y, ldy, last);
}

// Four bytes at `at` in every dword.
__attribute__((target("avx2"))) inline __m256i broadcast4_avx2(const std::int8_t* at) {
    std::int32_t v;
    std::memcpy(&v, at, 4);
    return _mm256_set1_epi32(v);
}

// The same tiles with AVX2 (no VNNI: Zen 1-3, Intel client cores): a step's 64
// bytes are two vectors, rows 0-7 and 8-15 of the tile (H of them computed), and
// vpmaddubsw multiplies unsigned by signed bytes into int16 pair sums.
// Q4: the nibbles (0-15) times the input (|x| <= 128) make pair sums of at most
// 3840, so a block's 8 of them add in int16 (at most 30720) and one vpmaddwd
// with ones widens the block; the bias adds the -8 back. Q8: u - 128 is the
// signed weight w, and the sign trick (|w| times x with w's sign) keeps each
// pair within 2 x 128 x 127 = 32512, so every step is widened; the bias is not
// used. The input must stay within +-127, as q8_input_of makes it (x = -128
// would flip to itself). The block sums are the same integers as the VNNI
// kernel's, scaled in the same order: both write the same floats.
template <int R, int H, bool Q4>
__attribute__((target("avx2,fma,f16c"))) inline void q8_gemm_tile_avx2(const q8_gemm_input& in, const q8_panel& p, std::int64_t m,
                                                                         std::int64_t t, float* y, std::int64_t ldy, std::int64_t valid) {
    constexpr std::int64_t bb = Q4 ? 256 : 512;  // bytes of a block of a tile
    const auto blocks = p.blocks;
    __m256 f[R][H];
    SCRIBE_UNROLL
    for (int r = 0; r < R; ++r)
        SCRIBE_UNROLL
        for (int h = 0; h < H; ++h) f[r][h] = _mm256_setzero_ps();
    const std::uint8_t* w = p.w.data() + t * blocks * bb;
    const std::uint16_t* s = p.s.data() + t * blocks * 16;
    const auto [x, bias, dx] = q8_input_rows<R>(in, m);
    const __m256i ones = _mm256_set1_epi16(1);
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::uint8_t* wb = w + b * bb;
        __m256i a[R][H];
        SCRIBE_UNROLL
        for (int r = 0; r < R; ++r)
            SCRIBE_UNROLL
            for (int h = 0; h < H; ++h) a[r][h] = _mm256_setzero_si256();
        if constexpr (Q4) {
            const __m256i nibble = _mm256_set1_epi8(0x0f);
            SCRIBE_UNROLL
            for (int step = 0; step < 4; ++step) {
                __m256i lo[H], hi[H];
                SCRIBE_UNROLL
                for (int h = 0; h < H; ++h) {
                    const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + step * 64 + h * 32));
                    lo[h] = _mm256_and_si256(v, nibble);
                    hi[h] = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
                }
                SCRIBE_UNROLL
                for (int r = 0; r < R; ++r) {
                    const __m256i xl = broadcast4_avx2(x[r] + b * 32 + 4 * step), xh = broadcast4_avx2(x[r] + b * 32 + 16 + 4 * step);
                    SCRIBE_UNROLL
                    for (int h = 0; h < H; ++h)
                        a[r][h] = _mm256_add_epi16(a[r][h], _mm256_add_epi16(_mm256_maddubs_epi16(lo[h], xl), _mm256_maddubs_epi16(hi[h], xh)));
                }
            }
            SCRIBE_UNROLL
            for (int r = 0; r < R; ++r)
                SCRIBE_UNROLL
                for (int h = 0; h < H; ++h) a[r][h] = _mm256_add_epi32(_mm256_madd_epi16(a[r][h], ones), _mm256_set1_epi32(bias[r][b]));
        } else {
            const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
            SCRIBE_UNROLL
            for (int step = 0; step < 8; ++step) {
                __m256i sw[H], aw[H];
                SCRIBE_UNROLL
                for (int h = 0; h < H; ++h) {
                    sw[h] = _mm256_xor_si256(_mm256_load_si256(reinterpret_cast<const __m256i*>(wb + step * 64 + h * 32)), flip);
                    aw[h] = _mm256_abs_epi8(sw[h]);
                }
                SCRIBE_UNROLL
                for (int r = 0; r < R; ++r) {
                    const __m256i xv = broadcast4_avx2(x[r] + b * 32 + 4 * step);
                    SCRIBE_UNROLL
                    for (int h = 0; h < H; ++h)
                        a[r][h] = _mm256_add_epi32(a[r][h], _mm256_madd_epi16(_mm256_maddubs_epi16(aw[h], _mm256_sign_epi8(xv, sw[h])), ones));
                }
            }
        }
        SCRIBE_UNROLL
        for (int h = 0; h < H; ++h) {
            const __m256 sv = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(s + b * 16 + h * 8)));
            SCRIBE_UNROLL
            for (int r = 0; r < R; ++r) f[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[r][h]), _mm256_mul_ps(sv, _mm256_set1_ps(dx[r][b])), f[r][h]);
        }
    }
    SCRIBE_UNROLL
    for (int r = 0; r < R; ++r) {
        float* out = y + (m + r) * ldy + t * 16;
        if (valid >= 8 * H) {
            SCRIBE_UNROLL
            for (int h = 0; h < H; ++h) _mm256_storeu_ps(out + 8 * h, f[r][h]);
        } else {  // the last tile's rows of the weight only
            alignas(32) float part[8 * H];
            SCRIBE_UNROLL
            for (int h = 0; h < H; ++h) _mm256_store_ps(part + 8 * h, f[r][h]);
            std::memcpy(out, part, static_cast<std::size_t>(valid) * sizeof(float));
        }
    }
}

// Every input row by tile t's first 8 H rows.
template <int H, bool Q4>
__attribute__((target("avx2,fma,f16c"))) inline void q8_gemm_rows_avx2(const q8_gemm_input& in, const q8_panel& p, std::int64_t t, float* y,
                                                                         std::int64_t ldy, std::int64_t valid) {
    constexpr int R = H == 2 ? 2 : 4;
    std::int64_t m = 0;
    for (; m + R <= in.rows; m += R) q8_gemm_tile_avx2<R, H, Q4>(in, p, m, t, y, ldy, valid);
    for (; m < in.rows; ++m) q8_gemm_tile_avx2<1, H, Q4>(in, p, m, t, y, ldy, valid);
}

template <bool Q4>
__attribute__((target("avx2,fma,f16c"))) inline void q8_gemm_avx2(const q8_gemm_input& in, const q8_panel& p, float* y, std::int64_t ldy) {
    for (std::int64_t t = 0; t < p.tiles; ++t) {
        const auto valid = std::min<std::int64_t>(16, p.cols - 16 * t);
        if (valid > 8) q8_gemm_rows_avx2<2, Q4>(in, p, t, y, ldy, valid);
        else q8_gemm_rows_avx2<1, Q4>(in, p, t, y, ldy, valid);
    }
}
#endif
#undef SCRIBE_UNROLL

}  // namespace detail

// Whether q8_gemm is faster here than widening the weight to f32 for the f32
// GEMM (the same values): with AVX-512 VNNI for both formats; with AVX2 for q4,
// whose block sums stay in int16 (on one Zen 1 core, 128 rows of GPT-2's
// products ran at 46-55 GFLOP/s against 34-40 widened), but not for q8, whose
// sign trick widens every step (29 against 34-39).
inline bool q8_gemm_fast(bool nibbles) {
#ifdef SCRIBE_X86
    return detail::has_avx512_vnni() || (nibbles && detail::has_avx2_fma_f16c());
#else
    (void)nibbles;
    return false;
#endif
}

// y[m][j] (m < in.rows, j < p.cols, row stride ldy) = the products of the input's
// rows with the panel's weight rows.
inline void q8_gemm(const q8_gemm_input& in, const q8_panel& p, float* y, std::int64_t ldy) {
    if (p.cols == 0 || in.rows == 0) return;
#ifdef SCRIBE_X86
    if (detail::has_avx512_vnni()) return p.nibbles ? detail::q8_gemm_avx512<true>(in, p, y, ldy) : detail::q8_gemm_avx512<false>(in, p, y, ldy);
    if (detail::has_avx2_fma_f16c()) return p.nibbles ? detail::q8_gemm_avx2<true>(in, p, y, ldy) : detail::q8_gemm_avx2<false>(in, p, y, ldy);
#endif
    detail::q8_gemm_portable(in, p, y, ldy);
}

}  // namespace scribe::cpu::simd

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
