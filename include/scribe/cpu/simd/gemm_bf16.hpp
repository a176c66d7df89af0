// scribe/cpu/simd/gemm_bf16.hpp — bf16 x bf16 -> f32 GEMM on AVX512_BF16
// (vdpbf16ps: each 32-bit lane takes a pair of bf16 products along k and adds
// both to an f32 accumulator, 32 products per instruction, twice the f32 FMA's
// rate). The same BLIS blocking as gemm.hpp, with the panels holding k-pairs:
// a B panel stores, per pair p and column j, the word (B(2p, j), B(2p+1, j)); an
// A panel, per pair p and row i, the word (A(i, 2p), A(i, 2p+1)). An odd k is
// padded with a zero. Products of two bf16 values are exact in f32, so results
// differ from the f32 GEMM on the same values only in the order of the sums.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include "gemm.hpp"
#include "gemm_amx.hpp"
#include "pack_pairs.hpp"

namespace scribe::cpu::simd {

namespace detail {

using pair_kernel = void (*)(std::int64_t pairs, const std::uint32_t* ap, const std::uint32_t* bp, float* c,
                             std::int64_t ldc, bool accumulate);

#ifdef SCRIBE_X86
#if defined(__GNUC__) && !defined(__clang__)  // GCC's false positive; Clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
// An A word (a bf16 pair) in all 16 lanes. Clang 16 and 17 recurse without end
// optimizing a bitcast of a broadcast to __m512bh (a stack overflow at -O1 and
// above; LLVM issue 68117, fixed in Clang 18): for them an empty asm hides the
// broadcast from the optimizer, which costs only its fold into vdpbf16ps.
__attribute__((target("avx512f,avx512bf16"))) inline __m512bh broadcast_pair(std::uint32_t word) {
    __m512i v = _mm512_set1_epi32(static_cast<int>(word));
#if defined(__clang__) && __clang_major__ < 18
    __asm__("" : "+v"(v));
#endif
    return (__m512bh)v;
}
// MR x (16 * NV) tile: per pair, NV B vectors and MR broadcast A words.
template <int MR, int NV>
__attribute__((target("avx512f,avx512bf16"))) void micro_pairs(std::int64_t pairs, const std::uint32_t* ap,
                                                                const std::uint32_t* bp, float* c, std::int64_t ldc,
                                                                bool accumulate) {
    constexpr int NR = 16 * NV;
    __m512 acc[MR][NV];
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 3
        for (int v = 0; v < NV; ++v)
            acc[i][v] = accumulate ? _mm512_loadu_ps(c + i * ldc + 16 * v) : _mm512_setzero_ps();
    for (std::int64_t p = 0; p < pairs; ++p, ap += MR, bp += NR) {
        __m512bh b[NV];
#pragma GCC unroll 3
        for (int v = 0; v < NV; ++v) b[v] = (__m512bh)_mm512_loadu_si512(bp + 16 * v);
#pragma GCC unroll 12
        for (int i = 0; i < MR; ++i) {
            const __m512bh a = broadcast_pair(ap[i]);
#pragma GCC unroll 3
            for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], a, b[v]);
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 3
        for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + i * ldc + 16 * v, acc[i][v]);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

struct pair_choice {
    pair_kernel kernel = nullptr;
    std::int64_t mr = 0, nr = 0;
    std::int64_t kc = detail::kc;  // the k blocks the panels are packed in
};
// The tile for products n columns wide, as choose_kernel picks: 12 x 32 where it
// pads n less than 8 x 48, and always where AMX takes the products (its blocks
// are 32 columns wide). Only meaningful where has_avx512bf16().
// On AMX the k blocks are 768 deep: each 32 x 32 block of C is loaded and stored
// once per block, so a product whose k fits one block (a hidden size up to 768)
// writes its result once, rounded to bf16 straight from the tiles where it is
// bf16, and never reads it back. Measured against 512 (2 threads, weights read
// from memory, `/tmp` program, sums of six GPT-2/BERT shapes at 128 and 1024
// rows): 6.41-6.76 ms -> 5.99-6.28 ms with the result rounded from the tiles.
// (256 was slower than 512, from C's traffic; 1024 measured within the noise of 768.)
inline pair_choice choose_pair_kernel(std::int64_t n) {
#ifdef SCRIBE_X86
    const auto padded = [n](std::int64_t nr) { return (n + nr - 1) / nr * nr; };
    if (has_amx_bf16()) return {micro_pairs<12, 2>, 12, 32, 768};
    if (n > 0 && padded(32) < padded(48)) return {micro_pairs<12, 2>, 12, 32};
    return {micro_pairs<8, 3>, 8, 48};
#else
    (void)n;
    return {};
#endif
}

// The blocked loops around the pair kernel, as gemm_blocked's: `panels(k0, kb,
// n0, nb)` returns B's panels for rows [k0, k0 + kb) and columns [n0, n0 + nb)
// (packing them now, or pointing into a matrix packed earlier).
template <class Panels>
void gemm_pairs_blocked(const pair_choice& choice, std::int64_t m, std::int64_t n, std::int64_t k,
                        const basic_matrix_view<bfloat16>& a, Panels&& panels, float* c, std::int64_t ldc) {
    const auto mr = choice.mr, nr = choice.nr, kc = choice.kc;
    if (k == 0) {
        for (std::int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
        return;
    }
    thread_local aligned_vector<std::uint32_t> a_pack;
    a_pack.resize(static_cast<std::size_t>(mc * (kc / 2)));
    for (std::int64_t n0 = 0; n0 < n; n0 += nc) {
        const auto nb = std::min(nc, n - n0);
        for (std::int64_t k0 = 0; k0 < k; k0 += kc) {
            const auto kb = std::min(kc, k - k0), pairs = (kb + 1) / 2;
            const bool accumulate = k0 > 0;
            const std::uint32_t* b_panels = panels(k0, kb, n0, nb);
            for (std::int64_t m0 = 0; m0 < m; m0 += mc) {
                const auto mb = std::min(mc, m - m0);
                pack_a_pairs(a, m0, mb, k0, kb, mr, a_pack.data());
                for (std::int64_t j = 0; j < nb; j += nr) {
                    const auto w = std::min(nr, nb - j);
                    const std::uint32_t* bp = b_panels + (j / nr) * nr * pairs;
                    for (std::int64_t i = 0; i < mb; i += mr) {
                        const auto h = std::min(mr, mb - i);
                        const std::uint32_t* ap = a_pack.data() + (i / mr) * mr * pairs;
                        float* cdst = c + (m0 + i) * ldc + n0 + j;
                        auto run = [&](float* to, std::int64_t ld) { choice.kernel(pairs, ap, bp, to, ld, accumulate); };
                        if (h == mr && w == nr) run(cdst, ldc);
                        else through_tile(run, cdst, ldc, h, w, nr, accumulate);
                    }
                }
            }
        }
    }
}

}  // namespace detail

// A bf16 B matrix (k x n) packed once into pair panels: a bf16 weight that bf16
// activations multiply. Rows [k0, k0 + kb) of the panel holding column j start
// at (k0 / 2) * padded_n + (j / nr) * nr * ((kb + 1) / 2) words.
class packed_pairs {
public:
    packed_pairs() = default;
    packed_pairs(const basic_matrix_view<bfloat16>& b, std::int64_t k, std::int64_t n) : packed_pairs(k, n) {
        data_.resize(static_cast<std::size_t>((k + 1) / 2 * padded_));
        pack(b, data_.data());
    }
    // b packed into `into` (size_for(k, n) words, which must outlive the result).
    packed_pairs(const basic_matrix_view<bfloat16>& b, std::int64_t k, std::int64_t n, std::uint32_t* into) : packed_pairs(k, n) {
        pack(b, into);
        borrowed_ = into;
    }
    // Words (two bf16 each) the panels of a k x n matrix take on this CPU.
    static std::size_t size_for(std::int64_t k, std::int64_t n) {
        const auto nr = detail::choose_pair_kernel(n).nr;
        return nr ? static_cast<std::size_t>((k + 1) / 2 * ((n + nr - 1) / nr * nr)) : 0;
    }
    // Panels written on a CPU with the same kernels, borrowed (see packed_matrix::borrow).
    static packed_pairs borrow(const std::uint32_t* data, std::int64_t k, std::int64_t n) {
        packed_pairs m(k, n);
        m.borrowed_ = data;
        return m;
    }
    std::int64_t rows() const { return k_; }
    std::int64_t cols() const { return n_; }
    std::int64_t nr() const { return choice_.nr; }
    std::size_t bytes() const { return static_cast<std::size_t>((k_ + 1) / 2 * padded_) * sizeof(std::uint32_t); }
    const std::uint32_t* data() const { return borrowed_ ? borrowed_ : data_.data(); }
    const std::uint32_t* panels(std::int64_t k0, std::int64_t kb, std::int64_t n0) const {
        return data() + k0 / 2 * padded_ + (n0 / choice_.nr) * choice_.nr * ((kb + 1) / 2);
    }
    const detail::pair_choice& kernel() const { return choice_; }

private:
    packed_pairs(std::int64_t k, std::int64_t n) : k_(k), n_(n), choice_(detail::choose_pair_kernel(n)) {  // the layout only
        padded_ = (n + choice_.nr - 1) / choice_.nr * choice_.nr;
    }
    void pack(const basic_matrix_view<bfloat16>& b, std::uint32_t* out) const {
        for (std::int64_t k0 = 0; k0 < k_; k0 += choice_.kc)
            detail::pack_b_pairs(b, k0, std::min(choice_.kc, k_ - k0), 0, n_, choice_.nr, out + k0 / 2 * padded_);
    }
    std::int64_t k_ = 0, n_ = 0, padded_ = 0;
    detail::pair_choice choice_{};
    aligned_vector<std::uint32_t> data_;
    const std::uint32_t* borrowed_ = nullptr;  // or the panels are data_
};

namespace detail {
// Whether AMX takes the products against b: the CPU has it (and AVX-512F, which
// rounds a bf16 result from its tiles) and b's panels are its 32 columns wide.
inline bool amx_takes(const packed_pairs& b) { return has_amx_bf16() && has_avx512f() && b.nr() % 32 == 0; }

#ifdef SCRIBE_X86
// Seconds that `rounds` x 24 independent vdpbf16ps (pairs) or vfmadd231ps take on
// registers: the issue rate of each, nothing from memory.
__attribute__((target("avx512f,avx512bf16"), noinline)) inline double time_pair_dots(long rounds) {
    __m512 acc[24];
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
    __m512i x = _mm512_set1_epi32(0x3f803f80);  // (1, 1) in every lane
    // Opaque from the start: Clang 16 and 17 recurse without end on a broadcast
    // bitcast to __m512bh (see broadcast_pair).
    __asm__("" : "+v"(x));
    const auto t0 = std::chrono::steady_clock::now();
    for (long r = 0; r < rounds; ++r) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], (__m512bh)x, (__m512bh)x);
        __asm__ volatile("" : "+v"(x));  // a value the loop cannot hoist
    }
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    __m512 s = acc[0];
    for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
    __asm__ volatile("" : : "v"(s));  // the sums are used
    return t;
}
__attribute__((target("avx512f"), noinline)) inline double time_fmas(long rounds) {
    __m512 acc[24];
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
    __m512 x = _mm512_set1_ps(1.0f);
    const auto t0 = std::chrono::steady_clock::now();
    for (long r = 0; r < rounds; ++r) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(x, x, acc[i]);
        __asm__ volatile("" : "+v"(x));
    }
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    __m512 s = acc[0];
    for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
    __asm__ volatile("" : : "v"(s));
    return t;
}
#endif

// Whether bf16 x bf16 products run on the pair kernels (AMX's tiles, or
// vdpbf16ps) rather than on the f32 GEMM, their values widened as they are
// packed (the products are exact in f32 either way; only the order of the sums
// differs). AMX always wins. A vdpbf16ps does the products of two FMAs, but CPUs
// issue it at different rates: an Emerald Rapids core (a VM with AMX hidden)
// issues one every 2 cycles and two FMAs every cycle, so its pairs run at half
// the FMAs' rate (85 against 165 GFLOP/s a core), and BERT-base's bf16 GEMMs
// at 68-80 GFLOP/s against 117-135 as f32 GEMMs on the widened values; Zen 4
// and Zen 5 issue it at the FMA's rate, twice the products.
//
// The rate is a property of the core's design, so where the vendor tells it, it
// is not timed: Intel's cores without AMX (Sapphire, Emerald and Granite Rapids
// with AMX hidden, and Cooper Lake, taken to be alike) take the f32 GEMM, AMD's
// the pairs. Timed, two processes on one Emerald Rapids VM once came to
// different answers while the test suite ran: an artifact compiled by one (its
// packs' layout is part of its machine key) was refused by the next as
// "compiled for another CPU's kernels". The rates timed there are 0.49-0.50
// apart in every trial, alone, under the suite's load and beside a thread
// running FMAs, so what misled that one timing is not known; a choice that can
// differ between two runs on the same machine must not come from a clock.
// Other vendors' cores are timed (bf16_pairs_timed).
inline bool bf16_pairs_timed() {
#ifdef SCRIBE_X86
    double pairs = 1e9, fmas = 1e9;
    for (int trial = 0; trial < 5; ++trial) {  // alternating, the best of each: a clock ramp or a preemption hits one trial
        pairs = std::min(pairs, time_pair_dots(4000));
        fmas = std::min(fmas, time_fmas(4000));
    }
    // Products a second: 32 a vdpbf16ps, 16 an FMA. The pairs are kept unless the
    // FMAs outrun them by a quarter (the f32 route also widens A and reads B's
    // panels at twice the bytes).
    return 32.0 / pairs * 1.25 >= 16.0 / fmas;
#else
    return false;
#endif
}

// The choice, made afresh (bf16_pairs_preferred keeps the first).
inline bool bf16_pairs_decided() {
#ifdef SCRIBE_X86
    if (!has_avx512bf16()) return false;
    if (has_amx_bf16() && has_avx512f()) return true;
    __builtin_cpu_init();
    if (__builtin_cpu_is("intel")) return false;
    if (__builtin_cpu_is("amd")) return true;
    return bf16_pairs_timed();
#else
    return false;
#endif
}

inline bool bf16_pairs_preferred() {
    static const bool yes = bf16_pairs_decided();
    return yes;
}
}  // namespace detail

// C = A * B[:, n0 : n0 + n], A bf16 and B packed in pairs; n0 a multiple of B's nr.
// Needs has_avx512bf16(); runs on AMX where the CPU has it (amx: false keeps to
// vdpbf16ps, for tests and benchmarks of both).
inline void bf16_gemm(std::int64_t m, std::int64_t n, const basic_matrix_view<bfloat16>& a, const packed_pairs& b,
                      std::int64_t n0, float* c, std::int64_t ldc, bool amx = true) {
    const auto panels = [&](std::int64_t k0, std::int64_t kb, std::int64_t j, std::int64_t) { return b.panels(k0, kb, n0 + j); };
    if (amx && detail::amx_takes(b))
        return detail::gemm_pairs_amx(b.nr(), b.kernel().kc, m, n, b.rows(), a, panels, c, ldc);
    detail::gemm_pairs_blocked(b.kernel(), m, n, b.rows(), a, panels, c, ldc);
}

// Whether bf16_gemm's rounded form (below) needs an f32 block for partial sums:
// not where AMX takes the product and k fits one of its k blocks.
inline bool bf16_gemm_needs_f32(const packed_pairs& b) {
    return !(detail::amx_takes(b) && b.rows() <= b.kernel().kc);
}

// The same, the result rounded to bf16 into `out` (nearest even, as narrow()):
// on AMX straight from the tiles as each block is finished, so the f32 result is
// never written out and read back. c (f32, ldc) holds partial sums; it may be
// null where !bf16_gemm_needs_f32(b) (amx: false keeps to vdpbf16ps, c needed).
inline void bf16_gemm(std::int64_t m, std::int64_t n, const basic_matrix_view<bfloat16>& a, const packed_pairs& b,
                      std::int64_t n0, bf16_result out, float* c, std::int64_t ldc, bool amx = true) {
    const auto panels = [&](std::int64_t k0, std::int64_t kb, std::int64_t j, std::int64_t) { return b.panels(k0, kb, n0 + j); };
    if (amx && detail::amx_takes(b))
        return detail::gemm_pairs_amx(b.nr(), b.kernel().kc, m, n, b.rows(), a, panels, c, ldc, false, out);
    detail::gemm_pairs_blocked(b.kernel(), m, n, b.rows(), a, panels, c, ldc);
    for (std::int64_t i = 0; i < m; ++i) narrow(c + i * ldc, out.data + i * out.ld, n);
}

// C = A * B with both bf16 and known only now (attention's products, the
// products of a training step): B is packed a block at a time as the loops
// reach it, into a buffer of this thread. Needs has_avx512bf16(); runs on AMX
// where the CPU has it (amx: false keeps to vdpbf16ps).
inline void bf16_gemm(std::int64_t m, std::int64_t n, std::int64_t k, const basic_matrix_view<bfloat16>& a,
                      const basic_matrix_view<bfloat16>& b, float* c, std::int64_t ldc, bool amx = true) {
    const auto choice = detail::choose_pair_kernel(n);
    amx = amx && detail::has_amx_bf16() && choice.nr % 32 == 0;
    const auto nc = amx ? detail::amx_nc : detail::nc;  // both multiples of every nr
    thread_local aligned_vector<std::uint32_t> b_pack;
    b_pack.resize(static_cast<std::size_t>(choice.kc / 2 * nc));
    const auto panels = [&](std::int64_t k0, std::int64_t kb, std::int64_t n0, std::int64_t nb) {
        detail::pack_b_pairs(b, k0, kb, n0, nb, choice.nr, b_pack.data());
        return static_cast<const std::uint32_t*>(b_pack.data());
    };
    if (amx) return detail::gemm_pairs_amx(choice.nr, choice.kc, m, n, k, a, panels, c, ldc);
    detail::gemm_pairs_blocked(choice, m, n, k, a, panels, c, ldc);
}

}  // namespace scribe::cpu::simd
