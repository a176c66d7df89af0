// Tensor parallelism on this machine's 2 cores: GPT-2 124M (random weights, the
// checkpoint of decoder_bench) at TP 1 and TP 2, ranks as threads of one process and
// as 2 MPI processes (mpirun), prefill of a 128-token prompt and KV-cached decode,
// in tokens/s, with the scaling against TP 1.
//
//   tp_bench --model DIR [--dtypes f32,f16,bf16,q8,q4] [--runs 5] [--rounds 3] [--steps 32] [--json FILE] [--python PY]
//
// Configurations (all with the same weights and prompt; greedy tokens must agree):
//   tp1 x1     TP 1 on 1 thread            the per-core baseline
//   tp1 x2     TP 1 on 2 threads           the kernels split each product over the cores
//   tp2 thr    TP 2, ranks as 2 threads    each rank 1 thread, its shards, all-reduce in memory
//   tp2 mpi    TP 2, ranks as 2 processes  mpirun -np 2 of this program; all-reduce over MPI
// Scaling efficiency = tokens/s / (2 x tp1 x1): 100% is perfect use of both cores.
// Each figure is the median of a fixed number of runs (a fixed count, so MPI ranks
// run the same loop), after one warm-up that builds the graphs, taken in --rounds
// rounds that each measure every configuration once, the MPI one included: this
// machine's bandwidth drifts by tens of percent over minutes (a shared host), so
// configurations are compared round by round (the ratio threads / MPI is the
// median of the rounds' ratios), never across minutes.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "timing.hpp"

#include <scribe/models/gpt2.hpp>
#include <scribe/runtime/decoder.hpp>
#ifdef SCRIBE_WITH_MPI
#include <scribe/parallel/mpi.hpp>
#endif

using namespace scribe;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t prompt_tokens = 128;

struct options {
    fs::path model;
    std::vector<std::string> dtypes = {"f32", "f16", "bf16", "q8", "q4"};
    int runs = 5, rounds = 3;
    std::int64_t steps = 32;
    std::string json, python;
    std::string worker_out;  // set in the mpirun children: where rank 0 writes its results
};

// A --dtypes entry as the decoder's load options: f32, f16, bf16, q8 or q4 (8-bit
// or 4-bit block matrices, f32 activations).
runtime::load_options load_as(const std::string& s) {
    if (s == "q8") return {.type = dtype::f32, .weights = models::weight_format::q8};
    if (s == "q4") return {.type = dtype::f32, .weights = models::weight_format::q4};
    return {.type = bench::parse_dtype(s, "tp_bench")};
}
using bench::median;

struct result {
    double prefill = NAN, decode = NAN;
    std::vector<std::int32_t> tokens;
};

result measure(const options& o, const std::string& dtype_name, unsigned threads, std::int64_t tp, cpu::communicator* comm) {
    const auto config = models::gpt2::config::load(o.model / "config.json");
    std::vector<std::int32_t> prompt;  // the same formula as decoder_bench and torch_decoder.py
    for (std::int64_t i = 0; i < prompt_tokens; ++i)
        prompt.push_back(static_cast<std::int32_t>((i * 7919 + 13) % config.vocab_size));
    auto lo = load_as(dtype_name);
    lo.threads = threads;
    lo.buckets = {prompt_tokens};
    lo.tp = tp;
    lo.comm = comm;
    runtime::decoder<models::gpt2_family> lm(o.model, lo);
    const runtime::generate_options one{.max_new_tokens = 1, .stop_at_eos = false};
    const runtime::generate_options many{.max_new_tokens = o.steps + 1, .stop_at_eos = false};
    lm.generate({prompt}, one);  // builds the graphs
    lm.generate({prompt}, many);
    std::vector<double> prefill, decode;
    result r;
    for (int k = 0; k < o.runs; ++k) {
        const auto p = lm.generate({prompt}, one);
        prefill.push_back(static_cast<double>(p.prompt_tokens) / p.prefill_seconds);
        const auto d = lm.generate({prompt}, many);
        decode.push_back(static_cast<double>(d.decode_steps) / d.decode_seconds);
        r.tokens = d.tokens[0];
    }
    r.prefill = median(prefill);
    r.decode = median(decode);
    return r;
}

nlohmann::json to_json(const result& r) { return {{"prefill", r.prefill}, {"decode", r.decode}, {"tokens", r.tokens}}; }
result from_json(const nlohmann::json& j) {
    return {j["prefill"].get<double>(), j["decode"].get<double>(), j["tokens"].get<std::vector<std::int32_t>>()};
}

std::string self_path() {
    std::vector<char> buf(4096);
    const auto n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
    if (n <= 0) throw error("tp_bench: cannot find its own path");
    return std::string(buf.data(), static_cast<std::size_t>(n));
}

// The MPI configuration: this program again, as 2 processes; rank 0's results.
std::optional<nlohmann::json> run_mpi(const options& o) {
#ifdef SCRIBE_WITH_MPI
    const auto out = fs::temp_directory_path() / ("scribe_tp_bench_" + std::to_string(::getpid()) + ".json");
    std::string dtypes;
    for (const auto& d : o.dtypes) dtypes += (dtypes.empty() ? "" : ",") + d;
    // Root may run mpirun here (CI and containers); 2 slots on a 2-core machine.
    const std::string cmd = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 --bind-to none " + self_path() +
                            " --model " + o.model.string() + " --dtypes " + dtypes + " --runs " + std::to_string(o.runs) +
                            " --steps " + std::to_string(o.steps) + " --worker-out " + out.string();
    std::fflush(stdout);
    if (std::system(cmd.c_str()) != 0) {
        std::printf("tp_bench: `%s` failed: no MPI figures\n", cmd.c_str());
        return std::nullopt;
    }
    std::ifstream in(out);
    auto j = nlohmann::json::parse(in);
    fs::remove(out);
    return j;
#else
    (void)o;
    std::printf("tp_bench: built without MPI (libopenmpi-dev): no MPI figures\n");
    return std::nullopt;
#endif
}

int worker([[maybe_unused]] int argc, [[maybe_unused]] char** argv, [[maybe_unused]] const options& o) {
#ifdef SCRIBE_WITH_MPI
    parallel::mpi_session mpi(&argc, &argv);
    nlohmann::json j;
    for (const auto& d : o.dtypes) j[d] = to_json(measure(o, d, 1, mpi.size(), &mpi.world()));
    if (mpi.rank() == 0) std::ofstream(o.worker_out) << j.dump() << "\n";
    return 0;
#else
    throw error("tp_bench: --worker-out needs a build with MPI");
#endif
}

}  // namespace

int main(int argc, char** argv) try {
    options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--model") o.model = v;
        else if (a == "--runs") o.runs = static_cast<int>(bench::parse_count(v, a, "tp_bench", 1, 1000));
        else if (a == "--rounds") o.rounds = static_cast<int>(bench::parse_count(v, a, "tp_bench", 1, 1000));
        else if (a == "--steps") o.steps = bench::parse_count(v, a, "tp_bench", 1, 1 << 20);
        else if (a == "--json") o.json = v;
        else if (a == "--python") o.python = v;
        else if (a == "--worker-out") o.worker_out = v;
        else if (a == "--dtypes") {
            o.dtypes.clear();
            std::stringstream in(v);
            for (std::string d; std::getline(in, d, ',');) o.dtypes.push_back(d);
        } else {
            throw error("tp_bench: unknown option " + a);
        }
    }
    if (o.model.empty()) throw error("usage: tp_bench --model DIR [--dtypes f32,f16,bf16,q8,q4] [--runs 5] [--rounds 3] [--steps 32] [--json FILE]");
    if (!o.worker_out.empty()) return worker(argc, argv, o);
    if (!o.python.empty() && fs::exists(o.python) && !fs::exists(o.model / "model.safetensors")) {
        const auto cmd = o.python + " " + (fs::path(SCRIBE_SOURCE_DIR) / "bench" / "make_gpt2_124m.py").string() + " " +
                         o.model.string();
        if (std::system(cmd.c_str()) != 0) throw error("tp_bench: `" + cmd + "` failed");
    }
    if (!fs::exists(o.model / "model.safetensors")) {
        std::fprintf(stderr, "tp_bench: no checkpoint in %s; make one with `.venv-ref/bin/python bench/make_gpt2_124m.py %s`\n",
                     o.model.c_str(), o.model.c_str());
        return 77;  // skipped
    }
    std::printf("GPT-2 124M, tensor parallel on this machine (%u hardware threads): %lld-token prompt, %lld decode "
                "steps, medians of %d rounds of %d runs\n",
                std::thread::hardware_concurrency(), static_cast<long long>(prompt_tokens), static_cast<long long>(o.steps),
                o.rounds, o.runs);
    nlohmann::json report = {{"model", o.model.string()}, {"runs", o.runs}, {"rounds", o.rounds}, {"steps", o.steps}};
    for (const auto& d : o.dtypes) (void)load_as(d);  // a bad name fails before anything runs
    std::map<std::string, std::map<std::string, std::vector<result>>> rounds;  // dtype -> config -> one per round
    for (int k = 0; k < o.rounds; ++k) {
        for (const auto& d : o.dtypes) {
            rounds[d]["tp1 x1"].push_back(measure(o, d, 1, 1, nullptr));
            rounds[d]["tp1 x2"].push_back(measure(o, d, 2, 1, nullptr));
            rounds[d]["tp2 thr"].push_back(measure(o, d, 2, 2, nullptr));
        }
        if (auto mpi = run_mpi(o))
            for (const auto& d : o.dtypes) rounds[d]["tp2 mpi"].push_back(from_json((*mpi)[d]));
    }
    std::map<std::string, std::map<std::string, result>> all;  // dtype -> config -> medians over the rounds
    for (auto& [d, configs] : rounds)
        for (auto& [cfg, rs] : configs) {
            std::vector<double> prefill, decode;
            for (const auto& r : rs) prefill.push_back(r.prefill), decode.push_back(r.decode);
            all[d][cfg] = {median(prefill), median(decode), rs.front().tokens};
            for (const auto& r : rs)
                if (r.tokens != rs.front().tokens) all[d][cfg].tokens.clear();  // rounds disagree: shown as DIFFER
        }
    std::printf("\n| dtype | config | prefill tok/s | x tp1 x1 | efficiency | decode tok/s | x tp1 x1 | efficiency | tokens |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|\n");
    bool same = true;
    for (const auto& d : o.dtypes) {
        const auto& base = all[d]["tp1 x1"];
        for (const char* cfg : {"tp1 x1", "tp1 x2", "tp2 thr", "tp2 mpi"}) {
            if (!all[d].count(cfg)) continue;
            const auto& r = all[d][cfg];
            const bool equal = r.tokens == base.tokens;
            same = same && equal;
            const double pf = r.prefill / base.prefill, dc = r.decode / base.decode;
            std::printf("| %s | %s | %.1f | %.2f | %.0f%% | %.1f | %.2f | %.0f%% | %s |\n", d.c_str(), cfg, r.prefill, pf,
                        50 * pf, r.decode, dc, 50 * dc, equal ? "= tp1" : "DIFFER");
            report["results"][d][cfg] = to_json(r);
        }
    }
    std::printf("\nefficiency = tokens/s / (2 x tp1 x1); greedy tokens of every configuration %s TP 1's\n",
                same ? "equal" : "DO NOT all equal");
    // Threads against MPI and against TP 1 on both cores, round by round.
    auto ratio = [&](const std::string& d, const char* a, const char* b, bool decode) {
        std::vector<double> r;
        const auto& x = rounds[d][a];
        const auto& y = rounds[d][b];
        for (std::size_t k = 0; k < std::min(x.size(), y.size()); ++k)
            r.push_back(decode ? x[k].decode / y[k].decode : x[k].prefill / y[k].prefill);
        return r.empty() ? NAN : median(r);
    };
    std::printf("\nround by round (median of the rounds' ratios):\n| dtype | tp2 thr / tp2 mpi prefill | decode | "
                "tp2 thr / tp1 x2 prefill | decode |\n|---|---|---|---|---|\n");
    for (const auto& d : o.dtypes) {
        const double tm_p = ratio(d, "tp2 thr", "tp2 mpi", false), tm_d = ratio(d, "tp2 thr", "tp2 mpi", true);
        const double t1_p = ratio(d, "tp2 thr", "tp1 x2", false), t1_d = ratio(d, "tp2 thr", "tp1 x2", true);
        std::printf("| %s | %.2f | %.2f | %.2f | %.2f |\n", d.c_str(), tm_p, tm_d, t1_p, t1_d);
        report["ratios"][d] = {{"thr_vs_mpi_prefill", tm_p}, {"thr_vs_mpi_decode", tm_d}, {"thr_vs_tp1x2_prefill", t1_p},
                               {"thr_vs_tp1x2_decode", t1_d}};
    }
    if (!o.json.empty()) std::ofstream(o.json) << report.dump(2) << "\n";
    return same ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "tp_bench: %s\n", e.what());
    return 1;
}
