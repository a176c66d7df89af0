// GEMM and GEMV of the CPU backend against OpenBLAS, measured side by side in one
// run, with the machine's own limits measured in the same run: the FMA peak of
// one core and the main-memory read bandwidth.
//
//   GEMM   C[M, N] = X[M, K] * W[K, N] at GPT-2 shapes, M in {1, 16, 128, 512}
//   GEMV   y[N] = x[K] * W[K, N] (decode, M = 1), against OpenBLAS and against
//          the read bandwidth (W is streamed once: 4 K N bytes per call)
//
//   packed: the same GEMM with W packed once beforehand (a bound weight);
//   M = 1 runs the one-row path (W streamed once), as the executor does.
//
// Usage: gemm_bench [--json FILE]     runs everything at 1 and at 2 threads (both
// Scribe's pool and OpenBLAS). Prints a table per thread count: every figure also
// as a fraction of its peer or limit. Medians of several repetitions.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <cblas.h>
#include <nlohmann/json.hpp>

#include "limits.hpp"
#include "timing.hpp"

#include <scribe/cpu/linalg.hpp>

namespace {

using bench::fma_peak_gflops;
using bench::median_seconds;
using bench::read_bandwidth_gbs;

// OpenBLAS's threads spin for a while after a call; on two cores they would take
// the core our second thread needs. Let them fall asleep before we measure.
void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(150)); }

}  // namespace

int main(int argc, char** argv) {
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    std::string json_path;
    for (int i = 1; i + 1 < argc; ++i)
        if (std::string(argv[i]) == "--json") json_path = argv[i + 1];

    nlohmann::json report;
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> u(-1, 1);
    auto fill = [&](std::vector<float>& v) { for (auto& x : v) x = u(rng); };
    std::printf("kernel: %s\n", scribe::cpu::simd::sgemm_kernel_name());

    for (unsigned threads : {1u, 2u}) {
        scribe::cpu::thread_pool pool(threads);
        openblas_set_num_threads(static_cast<int>(threads));
        const double bw = read_bandwidth_gbs(pool);
        const double peak = fma_peak_gflops(pool);
        nlohmann::json run = {{"threads", threads}, {"read_bandwidth_gbs", bw}, {"fma_peak_gflops", peak}};
        std::printf("\n=== %u thread(s): read bandwidth %.1f GB/s, FMA peak %.1f GFLOP/s (measured now)\n", threads, bw, peak);

        std::printf("%-22s %10s %10s %10s %8s %8s\n", "GEMM (M x K x N)", "scribe", "packed", "openblas", "ratio",
                    "of peak");
        struct kn { long k, n; };
        for (const kn s : {kn{768, 768}, kn{768, 2304}, kn{768, 3072}, kn{3072, 768}}) {
            for (const long m : {1L, 16L, 128L, 512L}) {
                std::vector<float> x(static_cast<std::size_t>(m * s.k)), w(static_cast<std::size_t>(s.k * s.n)),
                    c(static_cast<std::size_t>(m * s.n));
                fill(x);
                fill(w);
                const double flop = 2.0 * static_cast<double>(m) * static_cast<double>(s.k) * static_cast<double>(s.n);
                const scribe::cpu::simd::matrix_view xv{x.data(), s.k, 1}, wv{w.data(), s.n, 1};
                settle();
                // M = 1 takes the path the executor takes for one row: W streamed once (GEMV).
                const double ours = flop / median_seconds([&] {
                    if (m == 1) scribe::cpu::gemv_rows(&pool, s.n, s.k, x.data(), w.data(), s.n, c.data());
                    else scribe::cpu::gemm(&pool, m, s.n, s.k, xv, wv, c.data(), s.n);
                }) / 1e9;
                // W packed once beforehand, as executor::bind does for a weight.
                double packed = 0;
                if (m > 1) {
                    const scribe::cpu::simd::packed_matrix pw(wv, s.k, s.n);
                    packed = flop / median_seconds([&] { scribe::cpu::gemm(&pool, m, xv, pw, c.data(), s.n); }) / 1e9;
                }
                const double blas = flop / median_seconds([&] {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(s.n),
                                static_cast<int>(s.k), 1.0f, x.data(), static_cast<int>(s.k), w.data(),
                                static_cast<int>(s.n), 0.0f, c.data(), static_cast<int>(s.n));
                }) / 1e9;
                const double best = std::max(ours, packed);
                char label[64];
                std::snprintf(label, sizeof label, "%ld x %ld x %ld", m, s.k, s.n);
                std::printf("%-22s %7.1f GF %7.1f GF %7.1f GF %7.0f%% %7.0f%%\n", label, ours, packed, blas,
                            100 * ours / blas, 100 * best / peak);
                run["gemm"].push_back({{"m", m}, {"k", s.k}, {"n", s.n}, {"scribe_gflops", ours},
                                       {"packed_gflops", packed}, {"openblas_gflops", blas}, {"ratio", ours / blas},
                                       {"packed_ratio", packed / blas}, {"of_peak", best / peak}});
            }
        }

        std::printf("%-22s %10s %10s %8s %8s %9s %9s\n", "GEMV (K x N)", "scribe", "openblas", "ratio", "of BW",
                    "f16 x", "bf16 x");
        // Sizes beyond the 32 MiB L3 show the memory-bound rate; the small ones run from cache.
        for (const kn s : {kn{768, 768}, kn{768, 3072}, kn{3072, 768}, kn{768, 50257}, kn{3072, 8192}}) {
            std::vector<float> x(static_cast<std::size_t>(s.k)), w(static_cast<std::size_t>(s.k * s.n)),
                y(static_cast<std::size_t>(s.n));
            fill(x);
            fill(w);
            const double bytes = 4.0 * static_cast<double>(s.k) * static_cast<double>(s.n);
            settle();
            const double t32 = median_seconds([&] { scribe::cpu::gemv_rows(&pool, s.n, s.k, x.data(), w.data(), s.n, y.data()); });
            const double ours = bytes / t32 / 1e9;
            // The same product with 16-bit weights: the speed-up over f32 (2x is the memory-bound ideal).
            std::vector<scribe::half> wh(w.size());
            std::vector<scribe::bfloat16> wb(w.size());
            for (std::size_t i = 0; i < w.size(); ++i) {
                wh[i].bits = scribe::f32_to_f16_bits(w[i]);
                wb[i].bits = scribe::f32_to_bf16_bits(w[i]);
            }
            const double t16 = median_seconds([&] { scribe::cpu::gemv_rows(&pool, s.n, s.k, x.data(), wh.data(), s.n, y.data()); });
            const double tb16 = median_seconds([&] { scribe::cpu::gemv_rows(&pool, s.n, s.k, x.data(), wb.data(), s.n, y.data()); });
            const double blas = bytes / median_seconds([&] {
                cblas_sgemv(CblasRowMajor, CblasTrans, static_cast<int>(s.k), static_cast<int>(s.n), 1.0f, w.data(),
                            static_cast<int>(s.n), x.data(), 1, 0.0f, y.data(), 1);
            }) / 1e9;
            char label[64];
            std::snprintf(label, sizeof label, "%ld x %ld", s.k, s.n);
            std::printf("%-22s %5.1f GB/s %5.1f GB/s %7.0f%% %7.0f%% %8.2fx %8.2fx\n", label, ours, blas,
                        100 * ours / blas, 100 * ours / bw, t32 / t16, t32 / tb16);
            run["gemv"].push_back({{"k", s.k}, {"n", s.n}, {"scribe_gbs", ours}, {"openblas_gbs", blas},
                                   {"fraction_of_bandwidth", ours / bw}, {"f16_speedup", t32 / t16},
                                   {"bf16_speedup", t32 / tb16}});
        }
        report["runs"].push_back(run);
    }
    if (!json_path.empty()) std::ofstream(json_path) << report.dump(2) << "\n";
    return 0;
}
