// scribe/cpu/simd/gemm_amx.hpp — bf16 x bf16 -> f32 GEMM on AMX, the tile unit
// of Intel's Xeons since Sapphire Rapids. Eight tile registers of up to 16 rows
// x 64 bytes; one TDPBF16PS multiplies a 16 x 32 bf16 tile of A by a 16-pair x
// 16-column tile of B (each row of B one k-pair per column, the layout of
// gemm_bf16.hpp's pair panels) into a 16 x 16 f32 tile of C: 16 K products of
// 256 outputs per instruction, eight times what AVX512_BF16's vdpbf16ps does.
//
// The tiles are read straight out of the pair panels gemm_bf16.hpp packs (a B
// tile is 16 pair rows of 16 words, at the panel's row stride), so a weight
// packed for vdpbf16ps runs here unchanged. A is packed per block into rows of
// whole 32-element k steps, zero-padded, so that its tiles never read past the
// matrix; a k block whose pairs are not a multiple of 16 ends with a step whose
// B rows are copied into a zero-filled tile. The micro-kernel holds a 32 x 32
// block of C in four tiles (A and B in the other four).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "convert.hpp"
#include "gemm.hpp"
#include "pack_pairs.hpp"

#if defined(SCRIBE_X86) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <immintrin.h>
#define SCRIBE_AMX 1
#endif

namespace scribe::cpu::simd {

// Where a product's result may go instead of an f32 C: rounded to bf16 (to
// nearest even, as simd::narrow rounds) into `data`, a row every `ld` elements,
// as each block of it is finished. C then holds only the partial sums of the k
// blocks before the last (none where k fits one block: C may be null).
struct bf16_result {
    bfloat16* data = nullptr;
    std::int64_t ld = 0;
};

namespace detail {

// Whether this CPU has AMX-BF16 and Linux lets this process use its tiles (the
// tile data state is handed out only to a process that asks for it, once:
// arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)). Asked once.
inline bool has_amx_bf16() {
#ifdef SCRIBE_AMX
    static const bool yes = [] {
        unsigned a = 0, b = 0, c = 0, d = 0;
        if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
        const bool tile = (d >> 24) & 1, bf16 = (d >> 22) & 1;
        if (!tile || !bf16) return false;
        if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return false;  // OSXSAVE: xgetbv may be used
        unsigned lo = 0, hi = 0;
        __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        if (((lo >> 17) & 3) != 3) return false;  // the OS saves XTILECFG and XTILEDATA
        constexpr long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
        return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
    }();
    return yes;
#else
    return false;
#endif
}

// Columns of C per block (a multiple of 32): B's k block for them, 384 pairs x
// 512 columns (k blocks of 768, choose_pair_kernel), is 768 KiB, held in L2
// while every 32 rows of A pass over it (each 32 x 768 block of packed A, 48 KiB,
// with the 48 KiB of B a block of C reads: from L2 too, L1 being 48 KiB).
// Measured against 1024 columns (2 threads, the `/tmp` program of
// choose_pair_kernel's note, alternating builds): 5.4-6.5 -> 4.9-5.9 ms.
inline constexpr std::int64_t amx_nc = 512;
// k steps (of 32) a 32-row strip of C takes at a time, over all its blocks,
// within a k block of 24: A's 32 x 256 (16 KiB) stays in L1 while B's 32-column
// blocks pass, the strip's sums kept in between (64 KiB, in L2). Measured in one
// process against whole k blocks, alternating, best of 12, 1 thread, weights read
// from memory (`/tmp` program): 1024 x 3072 x 768 3.24-3.28 -> 2.99-3.06 ms,
// 1024 x 768 x 768 0.90 -> 0.83-0.84 ms, 1024 x 768 x 3072 1-2 % faster, 128
// rows within 1-4 %; sub-blocks of 16 steps were between, of 4 or 6 slower.
inline constexpr std::int64_t amx_sub_steps = 8;
// Rows of A packed at a time: a k block of them (1024 x 768 bf16, 1.5 MiB).
inline constexpr std::int64_t amx_mc = 1024;

#ifdef SCRIBE_AMX
// Rows x 32 f32 (ld floats a row) rounded to bf16 into out (ldo elements a row).
__attribute__((target("avx512f"))) inline void narrow_rows_32(const float* t, std::int64_t ld, std::int64_t rows,
                                                               bfloat16* out, std::int64_t ldo) {
    for (std::int64_t r = 0; r < rows; ++r) {
        const __m256i lo = narrow16_avx512(_mm512_load_ps(t + r * ld), out), hi = narrow16_avx512(_mm512_load_ps(t + r * ld + 16), out);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * ldo), lo);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * ldo + 16), hi);
    }
}

// Tiles 0-3: C (rows 0-15 x cols 0-15, 0-15 x 16-31, 16-31 x 0-15, 16-31 x
// 16-31); 4, 5: A (rows 0-15, 16-31); 6, 7: B (cols 0-15, 16-31). All 16 rows
// of 64 bytes.
struct alignas(64) amx_config {
    std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
    std::uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
    std::uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

// to[32 x 32] = from (or 0 where null) + A[32 x 32 * steps] * B[16 * steps pairs
// x 32]: a (packed A, lda bytes a row), b (pair rows of ldb bytes, the second B
// tile 64 bytes on), from and to (ldf and ldt bytes a row; they may be the
// same). The last step's B may come from `b_last` instead (a zero-padded copy of
// a short step), null where every step is whole. With `out`, the sums go there
// rounded to bf16 (ldo elements a row), not to `to`.
__attribute__((target("amx-tile,amx-bf16,avx512f"))) inline void amx_block_32x32(
    std::int64_t steps, const std::uint8_t* a, std::int64_t lda, const std::uint8_t* b, std::int64_t ldb,
    const std::uint8_t* b_last, const float* from, std::int64_t ldf, float* to, std::int64_t ldt,
    bfloat16* out = nullptr, std::int64_t ldo = 0) {
    if (from) {
        const auto* fb = reinterpret_cast<const std::uint8_t*>(from);
        _tile_loadd(0, fb, ldf);
        _tile_loadd(1, fb + 64, ldf);
        _tile_loadd(2, fb + 16 * ldf, ldf);
        _tile_loadd(3, fb + 16 * ldf + 64, ldf);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    for (std::int64_t s = 0; s < steps; ++s) {
        const std::uint8_t* bs = (b_last && s == steps - 1) ? b_last : b + s * 16 * ldb;
        const std::int64_t lb = (b_last && s == steps - 1) ? 128 : ldb;
        _tile_loadd(4, a + s * 64, lda);
        _tile_loadd(6, bs, lb);
        _tile_loadd(7, bs + 64, lb);
        _tile_loadd(5, a + 16 * lda + s * 64, lda);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    if (out) {
        alignas(64) float t[32 * 32];
        _tile_stored(0, t, 128);
        _tile_stored(1, t + 16, 128);
        _tile_stored(2, t + 16 * 32, 128);
        _tile_stored(3, t + 16 * 32 + 16, 128);
        return narrow_rows_32(t, 32, 32, out, ldo);
    }
    auto* cb = reinterpret_cast<std::uint8_t*>(to);
    _tile_stored(0, cb, ldt);
    _tile_stored(1, cb + 64, ldt);
    _tile_stored(2, cb + 16 * ldt, ldt);
    _tile_stored(3, cb + 16 * ldt + 64, ldt);
}

__attribute__((target("amx-tile"))) inline void amx_begin() {
    static const amx_config config{};
    _tile_loadconfig(&config);
}
__attribute__((target("amx-tile"))) inline void amx_end() { _tile_release(); }
#endif

// C[m x n] = A[m x k] * B, B in pair panels of nr columns (a multiple of 32)
// that `panels(k0, kb, n0, nb)` returns for rows [k0, k0 + kb) and columns
// [n0, n0 + nb) (packing them now, or pointing into a matrix packed earlier), k
// blocks of kc (a multiple of 32); with `add`, C += A * B. With `narrowed`, the
// last k block writes the result there in bf16 and C (null where k <= kc) keeps
// the earlier blocks' sums; not with `add`. A is packed amx_mc rows at a time.
// Needs has_amx_bf16() and has_avx512f().
template <class Panels>
void gemm_pairs_amx(std::int64_t nr, std::int64_t kc, std::int64_t m, std::int64_t n, std::int64_t k,
                    const basic_matrix_view<bfloat16>& a, Panels&& panels, float* c, std::int64_t ldc, bool add = false,
                    bf16_result narrowed = {}) {
#ifdef SCRIBE_AMX
    if (k == 0) {
        if (add) return;
        for (std::int64_t i = 0; i < m; ++i) {
            if (narrowed.data) std::fill(narrowed.data + i * narrowed.ld, narrowed.data + i * narrowed.ld + n, bfloat16{});
            else std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
        }
        return;
    }
    const std::int64_t width = kc;  // bf16 per packed A row: a whole k block
    thread_local aligned_vector<std::uint16_t> a_pack;
    thread_local aligned_vector<std::uint32_t> b_last;  // the short last step of each 32 columns, zero-padded
    a_pack.resize(static_cast<std::size_t>((std::min(m, amx_mc) + 31) / 32 * 32 * width));
    b_last.resize(static_cast<std::size_t>(amx_nc / 32 * 16 * 32));
    thread_local aligned_vector<float> strip;  // a 32-row strip's sums between k sub-blocks (in L2)
    constexpr std::int64_t strip_ld = amx_nc + 16;  // rows a cache line apart in the sets, not 2 KiB
    strip.resize(static_cast<std::size_t>(32 * strip_ld));
    amx_begin();
    for (std::int64_t m0 = 0; m0 < m; m0 += amx_mc) {
        const auto mb = std::min(amx_mc, m - m0);
        const basic_matrix_view<bfloat16> am{a.data + m0 * a.row_stride, a.row_stride, a.col_stride};
        for (std::int64_t k0 = 0; k0 < k; k0 += kc) {
            const auto kb = std::min(kc, k - k0), pairs = (kb + 1) / 2, steps = (pairs + 15) / 16;
            const auto short_rows = pairs % 16;  // pairs in a last, short step (0: none)
            const bool accumulate = add || k0 > 0;
            const bool to_bf16 = narrowed.data && k0 + kb == k;  // the last k block: rounded into `narrowed`
            pack_a_rows(am, mb, k0, kb, width, a_pack.data());
            for (std::int64_t n0 = 0; n0 < n; n0 += amx_nc) {
                const auto nb = std::min(amx_nc, n - n0);
                const std::uint32_t* b_panels = panels(k0, kb, n0, nb);
                const auto block = [&](std::int64_t j) { return b_panels + j / nr * nr * pairs + j % nr; };
                if (short_rows) {
                    std::fill(b_last.begin(), b_last.end(), 0u);
                    for (std::int64_t j = 0; j < nb; j += 32) {
                        const auto* from = block(j) + (steps - 1) * 16 * nr;
                        for (std::int64_t p = 0; p < short_rows; ++p)
                            std::memcpy(b_last.data() + (j / 32 * 16 + p) * 32, from + p * nr, 32 * sizeof(std::uint32_t));
                    }
                }
                for (std::int64_t i = 0; i < mb; i += 32) {
                    const auto h = std::min<std::int64_t>(32, mb - i);
                    const auto* ap = reinterpret_cast<const std::uint8_t*>(a_pack.data() + i * width);
                    const auto lda = width * 2;
                    std::int64_t j = 0;
                    if (h == 32 && steps > amx_sub_steps) {
                        // Whole 32 x 32 blocks, amx_sub_steps k steps at a time (A's 32 x 256, 16 KiB,
                        // stays in L1 while B's blocks pass); the strip's sums in between in `strip`.
                        const auto whole = nb / 32 * 32;
                        for (std::int64_t s0 = 0; s0 < steps; s0 += amx_sub_steps) {
                            const auto ss = std::min(amx_sub_steps, steps - s0);
                            const bool first = s0 == 0, last = s0 + ss == steps;
                            for (std::int64_t jj = 0; jj < whole; jj += 32) {
                                float* cdst = c ? c + (m0 + i) * ldc + n0 + jj : nullptr;
                                float* mid = strip.data() + jj;
                                const float* from = first ? (accumulate ? cdst : nullptr) : mid;
                                const auto ldf = first ? ldc : strip_ld;
                                float* to = last ? cdst : mid;
                                const auto ldt = last ? ldc : strip_ld;
                                bfloat16* out = last && to_bf16 ? narrowed.data + (m0 + i) * narrowed.ld + n0 + jj : nullptr;
                                const auto* bb = reinterpret_cast<const std::uint8_t*>(block(jj)) + s0 * 16 * nr * 4;
                                const auto* bl = last && short_rows ? reinterpret_cast<const std::uint8_t*>(b_last.data() + jj / 32 * 16 * 32) : nullptr;
                                amx_block_32x32(ss, ap + s0 * 64, lda, bb, nr * 4, bl, from, ldf * 4, to, ldt * 4, out, narrowed.ld);
                            }
                        }
                        j = whole;
                    }
                    for (; j < nb; j += 32) {
                        const auto w = std::min<std::int64_t>(32, nb - j);
                        float* cdst = c ? c + (m0 + i) * ldc + n0 + j : nullptr;  // (null: k fits one block, into `narrowed`)
                        const auto* bb = reinterpret_cast<const std::uint8_t*>(block(j));
                        const auto* bl = short_rows ? reinterpret_cast<const std::uint8_t*>(b_last.data() + j / 32 * 16 * 32) : nullptr;
                        auto run = [&](float* to, std::int64_t ld, bfloat16* out = nullptr) {
                            amx_block_32x32(steps, ap, lda, bb, nr * 4, bl, accumulate ? to : nullptr, ld * 4, to, ld * 4,
                                            out, narrowed.ld);
                        };
                        if (!to_bf16) {
                            if (h == 32 && w == 32) run(cdst, ldc);
                            else through_tile(run, cdst, ldc, h, w, 32, accumulate);
                            continue;
                        }
                        bfloat16* odst = narrowed.data + (m0 + i) * narrowed.ld + n0 + j;
                        if (h == 32 && w == 32) {
                            run(cdst, ldc, odst);
                            continue;
                        }
                        // A block at the result's edge: summed in a whole tile, its corner rounded out.
                        alignas(64) float tile[32 * 32];
                        if (accumulate)
                            for (std::int64_t y = 0; y < h; ++y) std::memcpy(tile + y * 32, cdst + y * ldc, static_cast<std::size_t>(w) * sizeof(float));
                        run(tile, 32);
                        for (std::int64_t y = 0; y < h; ++y) narrow(tile + y * 32, odst + y * narrowed.ld, w);
                    }
                }
            }
        }
    }
    amx_end();
#else
    (void)nr, (void)kc, (void)m, (void)n, (void)k, (void)a, (void)panels, (void)c, (void)ldc, (void)add, (void)narrowed;
#endif
}

}  // namespace detail
}  // namespace scribe::cpu::simd
