// bench/limits.hpp — the machine's own limits, measured in the benchmark's run:
// main-memory read bandwidth (what bounds decode) and the FMA peak (what bounds
// prefill), on a given number of threads. The same method as gemm_bench's: a
// 256 MiB buffer streamed through the widest vector loads the CPU has (AVX-512,
// else AVX2; the faster of one and eight streams per thread), and independent FMA
// chains held in registers (24 of 16 lanes on AVX-512, 12 of 8 on AVX2 + FMA). Also the
// bf16 dot-product peak (AMX's tdpbf16ps where the CPU has it, else AVX512_BF16's
// vdpbf16ps), the compute limit of bf16 weights on CPUs that have either. The
// AVX-512 FMA and vdpbf16ps loops are the library's own (simd::detail::time_fmas
// and time_pair_dots, which simd::detail::bf16_pairs_timed times to choose the
// bf16 GEMM on CPUs of other vendors than Intel and AMD), so the peaks reported
// are those rates, on every thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include <immintrin.h>

#include "timing.hpp"

#include <scribe/cpu/array.hpp>
#include <scribe/cpu/simd/convert.hpp>
#include <scribe/cpu/simd/gemm_amx.hpp>
#include <scribe/cpu/simd/gemm_bf16.hpp>
#include <scribe/cpu/simd/q8_q8.hpp>
#include <scribe/cpu/thread_pool.hpp>

namespace bench {

namespace limits_detail {

#if defined(__x86_64__)
// GCC 12 flags its own AVX-512 headers (_mm512_undefined_*) as uninitialized.
#if defined(__GNUC__) && !defined(__clang__)  // GCC's false positive; Clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
__attribute__((target("avx512f"))) inline float sum_avx512(const float* p, std::size_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t i = 0; i + 64 <= n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + i + 48));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

// Eight streams read side by side (eight equal parts of the range).
__attribute__((target("avx512f"))) inline float sum8_avx512(const float* p, std::size_t n) {
    const std::size_t part = n / 8 / 16 * 16;
    __m512 a[8];
    for (auto& v : a) v = _mm512_setzero_ps();
    for (std::size_t i = 0; i < part; i += 16)
#pragma GCC unroll 8
        for (int s = 0; s < 8; ++s) a[s] = _mm512_add_ps(a[s], _mm512_loadu_ps(p + s * part + i));
    for (int s = 1; s < 8; ++s) a[0] = _mm512_add_ps(a[0], a[s]);
    return _mm512_reduce_add_ps(a[0]);
}

// The same three on AVX2 + FMA (16 ymm registers: 12 chains of 8 lanes, enough to
// cover the FMA latency on two pipes).
__attribute__((target("avx2,fma,f16c"))) inline float sum_avx2(const float* p, std::size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t i = 0; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
    }
    return scribe::cpu::simd::detail::hsum8_avx2(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

__attribute__((target("avx2,fma,f16c"))) inline float sum8_avx2(const float* p, std::size_t n) {
    const std::size_t part = n / 8 / 8 * 8;
    __m256 a[8];
    for (auto& v : a) v = _mm256_setzero_ps();
    for (std::size_t i = 0; i < part; i += 8)
#pragma GCC unroll 8
        for (int s = 0; s < 8; ++s) a[s] = _mm256_add_ps(a[s], _mm256_loadu_ps(p + s * part + i));
    for (int s = 1; s < 8; ++s) a[0] = _mm256_add_ps(a[0], a[s]);
    return scribe::cpu::simd::detail::hsum8_avx2(a[0]);
}

// 12 independent FMA chains: 12 x 8 x 2 flop per iteration.
__attribute__((target("avx2,fma,f16c"))) inline float fma_chains_avx2(long iters) {
    __m256 acc[12];
    for (int j = 0; j < 12; ++j) acc[j] = _mm256_set1_ps(static_cast<float>(j));
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < iters; ++i)
#pragma GCC unroll 12
        for (int j = 0; j < 12; ++j) acc[j] = _mm256_fmadd_ps(acc[j], m, c);
    __m256 t = acc[0];
    for (int j = 1; j < 12; ++j) t = _mm256_add_ps(t, acc[j]);
    return scribe::cpu::simd::detail::hsum8_avx2(t);
}


// 12 independent vpdpbusd chains: 12 x 64 x 2 integer operations per iteration.
// (Named accumulators: GCC kept an array of them in memory, reloaded each pass.)
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline int dpbusd_chains(long iters) {
    const __m512i one = _mm512_set1_epi8(1);  // + 4 a lane a step: no overflow in 2^29 steps
    __m512i a0 = _mm512_set1_epi32(0), a1 = _mm512_set1_epi32(1), a2 = _mm512_set1_epi32(2), a3 = _mm512_set1_epi32(3),
            a4 = _mm512_set1_epi32(4), a5 = _mm512_set1_epi32(5), a6 = _mm512_set1_epi32(6), a7 = _mm512_set1_epi32(7),
            a8 = _mm512_set1_epi32(8), a9 = _mm512_set1_epi32(9), a10 = _mm512_set1_epi32(10), a11 = _mm512_set1_epi32(11);
    for (long i = 0; i < iters; ++i) {
        a0 = _mm512_dpbusd_epi32(a0, one, one), a1 = _mm512_dpbusd_epi32(a1, one, one), a2 = _mm512_dpbusd_epi32(a2, one, one);
        a3 = _mm512_dpbusd_epi32(a3, one, one), a4 = _mm512_dpbusd_epi32(a4, one, one), a5 = _mm512_dpbusd_epi32(a5, one, one);
        a6 = _mm512_dpbusd_epi32(a6, one, one), a7 = _mm512_dpbusd_epi32(a7, one, one), a8 = _mm512_dpbusd_epi32(a8, one, one);
        a9 = _mm512_dpbusd_epi32(a9, one, one), a10 = _mm512_dpbusd_epi32(a10, one, one), a11 = _mm512_dpbusd_epi32(a11, one, one);
    }
    const __m512i t = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                                       _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
    return _mm512_reduce_add_epi32(_mm512_add_epi32(t, _mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11))));
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

#ifdef SCRIBE_AMX
// Four independent AMX tdpbf16ps chains (16 x 16 outputs, 32 products each:
// 16384 flop an instruction) on tiles the GEMM's config lays out.
__attribute__((target("amx-tile,amx-bf16"))) inline float amx_bf16_chains(long iters) {
    alignas(64) static const std::uint16_t ones[16 * 32] = {};
    alignas(64) float out[16 * 16];
    scribe::cpu::simd::detail::amx_begin();
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, ones, 64);
    _tile_loadd(5, ones, 64);
    _tile_loadd(6, ones, 64);
    _tile_loadd(7, ones, 64);
    for (long i = 0; i < iters; ++i) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out, 64);
    scribe::cpu::simd::detail::amx_end();
    return out[0];
}
#endif

}  // namespace limits_detail

// Main-memory read bandwidth in GB/s on all of the pool's threads: the best of
// one and eight streams per thread, through 2 MiB pages (where Linux gives them:
// the buffer comes from scribe::cpu's allocator, which asks for them; through
// 4 KiB pages one core reads about half as fast).
inline double read_bandwidth_gbs(scribe::cpu::thread_pool& pool) {
    constexpr std::int64_t n = 64 << 20;  // 256 MiB of f32
    auto buffer = scribe::cpu::array::uninitialized(scribe::dtype::f32, {{"", n}});
    auto* big = reinterpret_cast<float*>(buffer.mutable_data());
    std::fill(big, big + n, 1.0f);
    std::vector<float> sink(pool.size());
    double best = 0;
    const bool wide = scribe::cpu::simd::detail::has_avx512f();
    for (auto* sum : {wide ? limits_detail::sum_avx512 : limits_detail::sum_avx2,
                      wide ? limits_detail::sum8_avx512 : limits_detail::sum8_avx2}) {
        const double s = median_seconds([&] {
            pool.run([&](unsigned t) {
                const auto [b, e] = pool.part(n, t, 1024);
                sink[t] = sum(big + b, static_cast<std::size_t>(e - b));
            });
        }, 1.0);
        best = std::max(best, static_cast<double>(n * sizeof(float)) / s / 1e9);
    }
    return best;
}

// f32 FMA peak in GFLOP/s on all of the pool's threads.
inline double fma_peak_gflops(scribe::cpu::thread_pool& pool) {
    constexpr long iters = 2'000'000;
    std::vector<double> sink(pool.size());
    const bool wide = scribe::cpu::simd::detail::has_avx512f();
    const double s = median_seconds([&] {
        pool.run([&](unsigned t) { sink[t] = wide ? scribe::cpu::simd::detail::time_fmas(iters) : limits_detail::fma_chains_avx2(iters); });
    }, 0.5);
    const double flop_per_iter = wide ? 2.0 * 16 * 24 : 2.0 * 8 * 12;
    return flop_per_iter * static_cast<double>(iters) * pool.size() / s / 1e9;
}

// The int8 dot-product peak (AVX-512 VNNI's vpdpbusd, a multiply and an add per
// byte pair) in G operations/s; 0 where the CPU lacks it.
inline double int8_dot_peak_gops(scribe::cpu::thread_pool& pool) {
    if (!scribe::cpu::simd::detail::has_avx512_vnni()) return 0;
    constexpr long iters = 2'000'000;
    std::vector<int> sink(pool.size());
    const double s = median_seconds([&] { pool.run([&](unsigned t) { sink[t] = limits_detail::dpbusd_chains(iters); }); }, 0.5);
    return 2.0 * 64 * 12 * static_cast<double>(iters) * pool.size() / s / 1e9;
}

// The bf16 dot-product peak in GFLOP/s: AMX's tdpbf16ps where the CPU has it (the
// bf16 GEMM runs there), else AVX512_BF16's vdpbf16ps; 0 where the CPU has neither.
inline double bf16_dot_peak_gflops(scribe::cpu::thread_pool& pool) {
#ifdef SCRIBE_AMX
    if (scribe::cpu::simd::detail::has_amx_bf16()) {
        constexpr long iters = 200'000;
        std::vector<float> sink(pool.size());
        const double s = median_seconds([&] { pool.run([&](unsigned t) { sink[t] = limits_detail::amx_bf16_chains(iters); }); }, 0.5);
        return 4.0 * 16 * 16 * 32 * 2 * static_cast<double>(iters) * pool.size() / s / 1e9;
    }
#endif
    if (!scribe::cpu::simd::detail::has_avx512bf16()) return 0;
    constexpr long iters = 2'000'000;
    std::vector<double> sink(pool.size());
    const double s = median_seconds([&] { pool.run([&](unsigned t) { sink[t] = scribe::cpu::simd::detail::time_pair_dots(iters); }); }, 0.5);
    return 2.0 * 32 * 24 * static_cast<double>(iters) * pool.size() / s / 1e9;
}

}  // namespace bench
