// scribe/cpu/simd/gemm.hpp — single-precision GEMM, BLIS style:
//
//     C[m, n] = sum_k A(m, k) * B(k, n)
//
// A and B are read through (row stride, column stride) pairs, so any transpose is
// free; C is row-major. B is packed into KC x NR panels (kept in L3), A into
// MR x KC panels (kept in L2), and a register-tiled micro-kernel computes each
// MR x NR tile of C with FMAs. The micro-kernel is chosen at run time:
// AVX-512 (8 x 48), AVX2 + FMA (6 x 16), or portable C++.
//
// This file and its siblings hold the project's intrinsics: xsimd 8.1 (Debian's)
// needs the target flags at compile time and has no FMA on its AVX-512 path,
// while a header-only library must run wherever it is compiled, so the kernels
// are compiled with target attributes and dispatched on the CPU's features.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "convert.hpp"

namespace scribe::cpu::simd {


// A matrix read through strides; elements f32, or f16/bf16 widened when packed.
template <class T>
struct basic_matrix_view {
    const T* data;
    std::int64_t row_stride, col_stride;
    float at(std::int64_t r, std::int64_t c) const { return to_f32(data[r * row_stride + c * col_stride]); }
};
using matrix_view = basic_matrix_view<float>;

namespace detail {

// Block sizes of the portable kernel and of the vdpbf16ps pair GEMM: an A block
// (MC x KC) fits a 1 MiB L2, a B panel (KC x NC) the L3. The AVX-512 and AVX2
// kernels take longer k blocks (see choose_kernel); max_kc bounds them all.
inline constexpr std::int64_t kc = 256;
inline constexpr std::int64_t mc = 168;   // a multiple of every MR (12, 8, 6, 4)
inline constexpr std::int64_t nc = 3072;  // a multiple of every NR (48, 32, 16, 8)
inline constexpr std::int64_t max_kc = 1024;

// The k blocks of a product k deep: as few as blocks of at most `kc` allow, of
// equal depth (2304 = 3 x 768 rather than 1024 + 1024 + 256), so no block is a
// short tail whose tiles pay the loads and stores of C for little work.
inline std::int64_t k_step(std::int64_t k, std::int64_t kc) {
    const auto blocks = std::max<std::int64_t>(1, (k + kc - 1) / kc);
    return (k + blocks - 1) / blocks;
}

#ifdef SCRIBE_X86
// Eight columns of a transposed f32 B (each column contiguous along k, `ld`
// apart) into rows of a panel `nr` wide: 8 x 8 blocks transposed in registers.
__attribute__((target("avx2,fma,f16c"))) inline void pack_columns8_avx2(const float* src, std::int64_t ld, std::int64_t kb,
                                                              std::int64_t nr, float* out) {
    std::int64_t k = 0;
    for (; k + 8 <= kb; k += 8) {
        __m256 r[8];
#pragma GCC unroll 8
        for (int y = 0; y < 8; ++y) r[y] = _mm256_loadu_ps(src + y * ld + k);
        const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
        const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
        const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
        const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
        const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
        const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
        _mm256_storeu_ps(out + (k + 0) * nr, _mm256_permute2f128_ps(s0, s4, 0x20));
        _mm256_storeu_ps(out + (k + 1) * nr, _mm256_permute2f128_ps(s1, s5, 0x20));
        _mm256_storeu_ps(out + (k + 2) * nr, _mm256_permute2f128_ps(s2, s6, 0x20));
        _mm256_storeu_ps(out + (k + 3) * nr, _mm256_permute2f128_ps(s3, s7, 0x20));
        _mm256_storeu_ps(out + (k + 4) * nr, _mm256_permute2f128_ps(s0, s4, 0x31));
        _mm256_storeu_ps(out + (k + 5) * nr, _mm256_permute2f128_ps(s1, s5, 0x31));
        _mm256_storeu_ps(out + (k + 6) * nr, _mm256_permute2f128_ps(s2, s6, 0x31));
        _mm256_storeu_ps(out + (k + 7) * nr, _mm256_permute2f128_ps(s3, s7, 0x31));
    }
    for (; k < kb; ++k)
        for (int y = 0; y < 8; ++y) out[k * nr + y] = src[y * ld + k];
}
#endif

// B[k0:k0+kc, n0:n0+nc] -> panels of NR columns, k-major, zero-padded.
template <class T>
void pack_b(const basic_matrix_view<T>& b, std::int64_t k0, std::int64_t kb, std::int64_t n0, std::int64_t nb,
            std::int64_t nr, float* out) {
#ifdef SCRIBE_X86
    // A transposed B (a weight read as W^T: dX = dY . W^T, the tied LM head's
    // logits; attention's keys, K^T): each panel column is a contiguous run along
    // k, transposed 8 at a time (16-bit columns widened by vectors first).
    if (b.row_stride == 1 && b.col_stride != 1 && nr % 8 == 0 && (std::is_same_v<T, float> || kb <= max_kc) &&
        has_avx2_fma_f16c()) {
        for (std::int64_t j = 0; j < nb; j += nr, out += nr * kb) {
            const auto w = std::min(nr, nb - j);
            std::int64_t x = 0;
            for (; x + 8 <= w; x += 8) {
                const T* col = b.data + k0 + (n0 + j + x) * b.col_stride;
                if constexpr (std::is_same_v<T, float>) {
                    pack_columns8_avx2(col, b.col_stride, kb, nr, out + x);
                } else {
                    alignas(64) float cols8[8 * max_kc];
                    for (std::int64_t r = 0; r < 8; ++r) widen(col + r * b.col_stride, cols8 + r * kb, kb);
                    pack_columns8_avx2(cols8, kb, kb, nr, out + x);
                }
            }
            for (std::int64_t k = 0; k < kb; ++k) {
                for (std::int64_t y = x; y < w; ++y) out[k * nr + y] = to_f32(b.data[k0 + k + (n0 + j + y) * b.col_stride]);
                std::fill(out + k * nr + w, out + (k + 1) * nr, 0.0f);
            }
        }
        return;
    }
#endif
    for (std::int64_t j = 0; j < nb; j += nr) {
        const auto w = std::min(nr, nb - j);
        for (std::int64_t k = 0; k < kb; ++k) {
            const T* src = b.data + (k0 + k) * b.row_stride + (n0 + j) * b.col_stride;
            if (b.col_stride == 1) {
                if constexpr (std::is_same_v<T, float>) std::memcpy(out, src, static_cast<std::size_t>(w) * sizeof(float));
                else widen(src, out, w);
            } else {
                for (std::int64_t x = 0; x < w; ++x) out[x] = to_f32(src[x * b.col_stride]);
            }
            std::fill(out + w, out + nr, 0.0f);
            out += nr;
        }
    }
}

// A[m0:m0+mb, k0:k0+kb] -> panels of MR rows, k-major, zero-padded.
template <class T>
void pack_a(const basic_matrix_view<T>& a, std::int64_t m0, std::int64_t mb, std::int64_t k0, std::int64_t kb,
            std::int64_t mr, float* out) {
    for (std::int64_t i = 0; i < mb; i += mr) {
        const auto h = std::min(mr, mb - i);
        if (h < mr) std::fill(out, out + mr * kb, 0.0f);
        if (a.row_stride == 1 && a.col_stride != 1) {
            // A transposed (a weight's gradient, x^T . dy: A's columns lie in a
            // row): each k's MR values are contiguous, copied as a run.
            for (std::int64_t k = 0; k < kb; ++k) {
                const T* src = a.data + (m0 + i) + (k0 + k) * a.col_stride;
                if constexpr (std::is_same_v<T, float>) std::memcpy(out + k * mr, src, static_cast<std::size_t>(h) * sizeof(float));
                else widen(src, out + k * mr, h);
            }
            out += mr * kb;
            continue;
        }
        // Walk each source row along k (contiguous when A is row-major).
        float row[max_kc];
        std::int64_t y = 0;
#ifdef SCRIBE_X86
        // 16-bit rows: eight widened by vectors, then transposed 8 x 8 in registers
        // into the panel (the scalar scatter below took 6 % of a bf16 product).
        if constexpr (!std::is_same_v<T, float>)
            if (a.col_stride == 1 && kb <= max_kc && has_avx2_fma_f16c()) {
                alignas(64) float rows8[8 * max_kc];
                for (; y + 8 <= h; y += 8) {
                    for (std::int64_t r = 0; r < 8; ++r) widen(a.data + (m0 + i + y + r) * a.row_stride + k0, rows8 + r * kb, kb);
                    pack_columns8_avx2(rows8, kb, kb, mr, out + y);
                }
            }
#endif
        for (; y < h; ++y) {
            const T* src = a.data + (m0 + i + y) * a.row_stride + k0 * a.col_stride;
            if constexpr (!std::is_same_v<T, float>)
                if (a.col_stride == 1 && kb <= max_kc) {  // 16-bit rows widened by vectors first
                    widen(src, row, kb);
                    for (std::int64_t k = 0; k < kb; ++k) out[k * mr + y] = row[k];
                    continue;
                }
            for (std::int64_t k = 0; k < kb; ++k) out[k * mr + y] = to_f32(src[k * a.col_stride]);
        }
        out += mr * kb;
    }
}

// A micro-kernel: C[MR x NR] (row stride ldc) = (accumulate ? C : 0) + A * Bp,
// where A(i, k) = ap[i * rs + k * cs]: a packed panel (rs = 1, cs = MR) or rows
// of a row-major f32 matrix read in place (rs = its row stride, cs = 1). While it
// runs it may prefetch `pf_lines` cache lines from `pf` into L2: the tile's share
// of the next B panel (gemm_blocked), so that panel's first tile does not wait on
// memory (null, 0: none).
using micro_kernel = void (*)(std::int64_t kb, const float* ap, std::int64_t rs, std::int64_t cs, const float* bp,
                              float* c, std::int64_t ldc, bool accumulate, const char* pf, std::int64_t pf_lines);

template <int MR, int NR>
void micro_portable(std::int64_t kb, const float* ap, std::int64_t rs, std::int64_t cs, const float* bp, float* c,
                    std::int64_t ldc, bool accumulate, const char*, std::int64_t) {
    float acc[MR][NR];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) acc[i][j] = accumulate ? c[i * ldc + j] : 0.0f;
    for (std::int64_t k = 0; k < kb; ++k, ap += cs, bp += NR)
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j) acc[i][j] += ap[i * rs] * bp[j];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) c[i * ldc + j] = acc[i][j];
}

// GCC 12 reports its own AVX-512 intrinsic headers (_mm512_undefined_* inside
// conversions and shifts) as maybe-uninitialized; the warning is false there.
#if defined(__GNUC__) && !defined(__clang__)  // GCC's false positive; Clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#ifdef SCRIBE_X86
// MR x (16 * NV) on AVX-512: MR * NV accumulators, NV B vectors per step, A
// broadcast from memory. 8 x 48 (24 accumulators) divides the GPT-2 weight shapes
// (M = 16, 128, 512; N = 768, 2304, 3072); 12 x 32 (also 24) serves narrow
// products such as attention's head_dim 64, where 48 would waste a third.
// As micro_avx2 does, the accumulators start at zero and C, its lines prefetched
// first, is added at the end; B's lines are prefetched 8 steps ahead (its panel
// comes from L2: 768 deep, it outgrows L1), and the next panel's share `pf` into
// L2. That share took the products of 128 rows against weights read from memory
// (prefill, an encoder's batch of 1) from 141-145 to 163-168 GFLOP/s on one
// Emerald Rapids core (FMA peak 174; 128 x 3072 x 768 and 128 x 768 x 768, `/tmp`
// program, the L3 flushed before each product): the first tile of each panel
// had waited on memory while the other 15 computed, nothing overlapping the two.
// (Prefetching the whole share at the tile's start gained nothing: 144 misses
// at once fill the line buffers and stall the tile.)
template <int MR, int NV>
__attribute__((target("avx512f"))) void micro_avx512(std::int64_t kb, const float* ap, std::int64_t rs,
                                                     std::int64_t cs, const float* bp, float* c, std::int64_t ldc,
                                                     bool accumulate, const char* pf, std::int64_t pf_lines) {
    constexpr int NR = 16 * NV;
    __m512 acc[MR][NV];
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 3
        for (int v = 0; v < NV; ++v)
            acc[i][v] = _mm512_setzero_ps();
    if (accumulate)
#pragma GCC unroll 12
        for (int i = 0; i < MR; ++i)
#pragma GCC unroll 3
            for (int v = 0; v < NV; ++v) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16 * v), _MM_HINT_T0);
    for (std::int64_t k = 0; k < kb; ++k, ap += cs, bp += NR) {
#pragma GCC unroll 3
        for (int v = 0; v < NV; ++v) _mm_prefetch(reinterpret_cast<const char*>(bp + 8 * NR + 16 * v), _MM_HINT_T0);
        // One line of the next panel every 4 steps (48 cycles): a few misses in flight, not a
        // burst that fills the line buffers.
        if ((k & 3) == 0 && (k >> 2) < pf_lines) _mm_prefetch(pf + (k >> 2) * 64, _MM_HINT_T1);
        __m512 b[NV];
#pragma GCC unroll 3
        for (int v = 0; v < NV; ++v) b[v] = _mm512_loadu_ps(bp + 16 * v);
#pragma GCC unroll 12
        for (int i = 0; i < MR; ++i) {
            const __m512 a = _mm512_set1_ps(ap[i * rs]);
#pragma GCC unroll 3
            for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(a, b[v], acc[i][v]);
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 3
        for (int v = 0; v < NV; ++v) {
            if (accumulate) acc[i][v] = _mm512_add_ps(acc[i][v], _mm512_loadu_ps(c + i * ldc + 16 * v));
            _mm512_storeu_ps(c + i * ldc + 16 * v, acc[i][v]);
        }
}

// 6 x 16 on AVX2 + FMA: 12 accumulators, 2 B vectors per step, A broadcast
// from memory. Every loop over the tile is unrolled, so the accumulators stay in
// registers (a loop left rolled makes GCC keep them in memory, stored every step).
// The accumulators start at zero and C is added at the end, its lines prefetched
// first: C's tile is rarely cached (a [1024 x 2304] result is 9 MiB), and loading
// it before the first FMA stalled every tile on memory (82 -> 86 % of the peak on
// the GPT-2 training shapes at k blocks of 256). B's panel (768 deep: 48 KiB)
// outgrows a 32 KiB L1, so each step prefetches B's line 8 steps ahead, as
// micro_avx512 does. On one Zen 1 core (FMA peak 47 GFLOP/s; 1024 rows against
// 12 packed weights read from memory in turn; means of eight interleaved rounds)
// K x N = 3072 x 768, 768 x 3072 and 768 x 768 went from 41.4, 41.2 and 40.5 to
// 41.8, 41.9 and 41.2 GFLOP/s: 1-2 %, less than the rounds' own spread of 5 %,
// but in the same direction on every shape.
__attribute__((target("avx2,fma"))) inline void micro_avx2(std::int64_t kb, const float* ap, std::int64_t rs,
                                                           std::int64_t cs, const float* bp, float* c,
                                                           std::int64_t ldc, bool accumulate, const char*, std::int64_t) {
    constexpr int MR = 6;
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
        c0[i] = _mm256_setzero_ps();
        c1[i] = _mm256_setzero_ps();
        if (accumulate) {  // the tile's row spans one or two lines
            _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 15), _MM_HINT_T0);
        }
    }
    for (std::int64_t k = 0; k < kb; ++k, ap += cs, bp += 16) {
        _mm_prefetch(reinterpret_cast<const char*>(bp + 8 * 16), _MM_HINT_T0);  // B's line 8 steps ahead
        const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; ++i) {
            const __m256 a = _mm256_broadcast_ss(ap + i * rs);
            c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
        if (accumulate) {
            c0[i] = _mm256_add_ps(c0[i], _mm256_loadu_ps(c + i * ldc));
            c1[i] = _mm256_add_ps(c1[i], _mm256_loadu_ps(c + i * ldc + 8));
        }
        _mm256_storeu_ps(c + i * ldc, c0[i]);
        _mm256_storeu_ps(c + i * ldc + 8, c1[i]);
    }
}
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

struct kernel_choice {
    micro_kernel kernel;
    std::int64_t mr, nr;
    const char* name;
    std::int64_t kc = detail::kc, mc = detail::mc, nc = detail::nc;  // its blocking
};

// The micro-kernel for products n columns wide (n = 0: the default, for weights
// whose width is not known to be narrow). On AVX-512 the 32-wide tile is taken
// where it pads n less than the 48-wide one.
// AVX-512's k blocks are up to 768 deep: a product over a hidden size up to 768
// loads and stores C once, and one over 3072 four times rather than twelve (a
// [1024 x 3072] C is 12 MiB, outside L2, and each of its tiles stalled on those
// loads). Measured on one Emerald Rapids core (FMA peak 174 GFLOP/s; `/tmp`
// program, packed weights in cache, best of 6, alternating builds), blocks of
// 256 -> 768 with micro_avx512's C and B prefetches (before the next-panel one):
// 1024 x 3072 x 768 140-144 -> 153-158 GFLOP/s, 1024 x 768 x 3072 147-150 ->
// 155-159, 128 x 3072 x 768 151-153 -> 160-165; blocks of 512 gained half as
// much, 1024 the same as 768.

inline kernel_choice choose_kernel(std::int64_t n = 0) {
#ifdef SCRIBE_X86
    if (has_avx512f()) {
        constexpr std::int64_t avx512_kc = 768;
        const auto padded = [n](std::int64_t nr) { return (n + nr - 1) / nr * nr; };
        if (n > 0 && padded(32) < padded(48)) return {micro_avx512<12, 2>, 12, 32, "avx512 12x32", avx512_kc};
        return {micro_avx512<8, 3>, 8, 48, "avx512 8x48", avx512_kc};
    }
    // k blocks up to 1024 deep: C is loaded and stored once per block, and with
    // blocks of 256 that traffic held the GPT-2 training shapes at 80 % of a Zen 3
    // core's peak (88-89 % at 768-1536; the 6 x 16 tile's A and B streams are
    // prefetched well from L2 and L3, so the blocks need not fit L1 and L2).
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return {micro_avx2, 6, 16, "avx2 6x16", max_kc, 240, 1536};
#endif
    return {micro_portable<4, 8>, 4, 8, "portable 4x8"};
}

}  // namespace detail

// The micro-kernel this machine uses ("avx512 8x48", "avx2 6x16" or "portable 4x8").
inline const char* sgemm_kernel_name() {
    static const auto k = detail::choose_kernel();
    return k.name;
}

namespace detail {

// Runs `kernel(c, ldc)` for an MR x NR tile of C whose corner is only h x w
// (at C's edge) through a full-size buffer, so the kernel always writes whole tiles.
template <class Kernel>
void through_tile(Kernel&& kernel, float* c, std::int64_t ldc, std::int64_t h, std::int64_t w, std::int64_t nr,
                  bool accumulate) {
    alignas(64) float tile[32 * 32];  // the largest MR x NR: AMX's 32 x 32 (8 x 48 and 12 x 32 fit)
    if (accumulate)
        for (std::int64_t y = 0; y < h; ++y) std::memcpy(tile + y * nr, c + y * ldc, static_cast<std::size_t>(w) * sizeof(float));
    kernel(tile, nr);
    for (std::int64_t y = 0; y < h; ++y) std::memcpy(c + y * ldc, tile + y * nr, static_cast<std::size_t>(w) * sizeof(float));
}

// The blocked loops around the micro-kernel. `panels(k0, kb, n0, nb)` returns B's
// packed panels for rows [k0, k0 + kb) and columns [n0, n0 + nb), NR columns per
// panel, k-major (packing them now, or pointing into a matrix packed earlier).
template <class TA, class Panels>
void gemm_blocked(const kernel_choice& choice, std::int64_t m, std::int64_t n, std::int64_t k,
                  const basic_matrix_view<TA>& a, Panels&& panels, float* c, std::int64_t ldc) {
    const auto mr = choice.mr, nr = choice.nr;
    if (k == 0) {
        for (std::int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
        return;
    }
    const auto mc = choice.mc, nc = choice.nc, kstep = k_step(k, choice.kc);
    thread_local aligned_vector<float> a_pack;
    a_pack.resize(static_cast<std::size_t>(mc * kstep));
    // A row-major f32 A is read in place by full tiles; only partial ones are packed.
    const bool a_in_place = std::is_same_v<TA, float> && a.col_stride == 1;
    for (std::int64_t n0 = 0; n0 < n; n0 += nc) {
        const auto nb = std::min(nc, n - n0);
        for (std::int64_t k0 = 0; k0 < k; k0 += kstep) {
            const auto kb = std::min(kstep, k - k0);
            const bool accumulate = k0 > 0;
            const float* b_panels = panels(k0, kb, n0, nb);
            for (std::int64_t m0 = 0; m0 < m; m0 += mc) {
                const auto mb = std::min(mc, m - m0);
                if (!a_in_place) pack_a(a, m0, mb, k0, kb, mr, a_pack.data());
                else if (mb % mr) pack_a(a, m0 + mb / mr * mr, mb % mr, k0, kb, mr, a_pack.data() + mb / mr * mr * kb);
                // Each tile of a panel prefetches its share of the next panel's lines.
                const std::int64_t tiles = (mb + mr - 1) / mr, panel_lines = nr * kb * std::int64_t{sizeof(float)} / 64;
                for (std::int64_t j = 0; j < nb; j += nr) {
                    const auto w = std::min(nr, nb - j);
                    const float* bp = b_panels + (j / nr) * nr * kb;
                    const char* next = j + nr < nb ? reinterpret_cast<const char*>(bp + nr * kb) : nullptr;
                    for (std::int64_t i = 0; i < mb; i += mr) {
                        const auto h = std::min(mr, mb - i);
                        const auto t = i / mr, l0 = t * panel_lines / tiles, l1 = (t + 1) * panel_lines / tiles;
                        const char* pf = next ? next + l0 * 64 : nullptr;
                        const std::int64_t pf_lines = next ? l1 - l0 : 0;
                        const float* ap = a_pack.data() + (i / mr) * mr * kb;
                        std::int64_t rs = 1, cs = mr;
                        if (a_in_place && h == mr) {
                            ap = reinterpret_cast<const float*>(a.data) + (m0 + i) * a.row_stride + k0;
                            rs = a.row_stride;
                            cs = 1;
                        }
                        float* cdst = c + (m0 + i) * ldc + n0 + j;
                        auto run = [&](float* to, std::int64_t ld) { choice.kernel(kb, ap, rs, cs, bp, to, ld, accumulate, pf, pf_lines); };
                        if (h == mr && w == nr) run(cdst, ldc);
                        else through_tile(run, cdst, ldc, h, w, nr, accumulate);
                    }
                }
            }
        }
    }
}

}  // namespace detail

// C (row-major, leading dimension ldc) = A (m x k) * B (k x n), in f32. A and B
// may hold f16 or bf16 elements: they are widened while packed.
template <class TA, class TB>
void sgemm(std::int64_t m, std::int64_t n, std::int64_t k, const basic_matrix_view<TA>& a,
           const basic_matrix_view<TB>& b, float* c, std::int64_t ldc) {
    const auto choice = detail::choose_kernel(n);
    thread_local aligned_vector<float> b_pack;
    b_pack.resize(static_cast<std::size_t>(detail::k_step(k, choice.kc) * (choice.nc + choice.nr)));
    detail::gemm_blocked(choice, m, n, k, a, [&](std::int64_t k0, std::int64_t kb, std::int64_t n0, std::int64_t nb) {
        detail::pack_b(b, k0, kb, n0, nb, choice.nr, b_pack.data());
        return static_cast<const float*>(b_pack.data());
    }, c, ldc);
}

// A B matrix (k x n) packed once into the micro-kernel's panels, in f32: a weight
// that many products read. Rows [k0, k0 + kb) of the panel holding column j start
// at k0 * padded_n + (j / nr) * nr * kb.
class packed_matrix {
public:
    packed_matrix() = default;
    template <class T>
    explicit packed_matrix(const basic_matrix_view<T>& b, std::int64_t k, std::int64_t n)
        : k_(k), n_(n), choice_(detail::choose_kernel(n)), nr_(choice_.nr) {
        padded_ = (n + nr_ - 1) / nr_ * nr_;
        data_.resize(static_cast<std::size_t>(k * padded_));
        const auto kstep = detail::k_step(k, choice_.kc);  // the blocks gemm_blocked walks
        for (std::int64_t k0 = 0; k0 < k; k0 += kstep)
            detail::pack_b(b, k0, std::min(kstep, k - k0), 0, n, nr_, data_.data() + k0 * padded_);
    }
    // Floats the panels of a k x n matrix take on this CPU (its kernel's nr).
    static std::size_t size_for(std::int64_t k, std::int64_t n) {
        const auto nr = detail::choose_kernel(n).nr;
        return static_cast<std::size_t>(k * ((n + nr - 1) / nr * nr));
    }
    // The panels a packed_matrix of the same k and n wrote on a CPU with the same
    // kernels (a saved artifact's), borrowed: `data` (size_for(k, n) floats) must
    // outlive the result.
    static packed_matrix borrow(const float* data, std::int64_t k, std::int64_t n) {
        packed_matrix m;
        m.k_ = k, m.n_ = n, m.choice_ = detail::choose_kernel(n), m.nr_ = m.choice_.nr;
        m.padded_ = (n + m.nr_ - 1) / m.nr_ * m.nr_;
        m.borrowed_ = data;
        return m;
    }
    std::int64_t rows() const { return k_; }
    std::int64_t cols() const { return n_; }
    std::size_t bytes() const { return static_cast<std::size_t>(k_ * padded_) * sizeof(float); }
    // Every panel, in the order they are stored (bytes() of them).
    const float* data() const { return borrowed_ ? borrowed_ : data_.data(); }
    // The panels of rows [k0, k0 + kb) from column n0 (a multiple of nr).
    const float* panels(std::int64_t k0, std::int64_t kb, std::int64_t n0) const {
        return data() + k0 * padded_ + (n0 / nr_) * nr_ * kb;
    }
    std::int64_t nr() const { return nr_; }
    const detail::kernel_choice& kernel() const { return choice_; }

private:
    std::int64_t k_ = 0, n_ = 0;
    detail::kernel_choice choice_{};
    std::int64_t nr_ = 1, padded_ = 0;
    aligned_vector<float> data_;
    const float* borrowed_ = nullptr;  // or the panels are data_
};

// C = A * B[:, n0 : n0 + n] with B packed beforehand; n0 must be a multiple of B's nr.
template <class TA>
void sgemm(std::int64_t m, std::int64_t n, const basic_matrix_view<TA>& a, const packed_matrix& b, std::int64_t n0,
           float* c, std::int64_t ldc) {
    detail::gemm_blocked(b.kernel(), m, n, b.rows(), a, [&](std::int64_t k0, std::int64_t kb, std::int64_t nb0, std::int64_t) {
        return b.panels(k0, kb, n0 + nb0);
    }, c, ldc);
}

}  // namespace scribe::cpu::simd
