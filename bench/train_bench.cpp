// One whole training step of a decoder (causal-LM loss, train::causal_lm_loss;
// every gradient; global-norm clipping to 1; AdamW, lr 1e-5, weight decay 0.01 on
// the matrices: train::append_update, run by runtime::trainer) on the CPU, against
// PyTorch's (bench/torch_train.py: Hugging Face AutoModelForCausalLM, eager,
// float32, loss.backward(), clip_grad_norm_, torch.optim.AdamW) on the same
// checkpoint in the same run: seconds per step, tokens/s and the fraction of the
// GEMM peak (6 x parameters x tokens FLOPs a step, against bench/limits.hpp's
// measured peak; and each peer's fraction at the FLOPs of the step graph's
// products as built) at 1 and 2 threads, and the step's peak memory.
//
//   train_bench --model DIR [--make SCRIPT] [--python PY] [--xla-python PY] [--dir DIR] [--threads 1,2] [--batch 4] [--seq 256] [--json FILE]
//               [--profile 1]   also where a step's time goes (the executor's per-node times)
//               [--precision bf16,bf16-sr,bf16-master,autocast]   also each precision mode's step (train/precision.hpp)
//                               at the last thread count, against the f32 step and PyTorch's bf16 autocast step
//               [--dp 2]        data parallel: the step of 2 ranks (each 1 thread, half the batch, gradients
//                               all-reduced) as threads and as MPI processes (mpirun of this program),
//                               against 1 rank with 2 threads; 0: not measured
//
// With --xla-python (a Python with jax), XLA's CPU backend runs the same step
// graph, exported as HLO to --dir, feeding its aliased outputs back each step
// (bench/xla_train.py).
//
// DIR is any family's folder (decoder_bench's GPT-2 124M or LLaMA 124M with
// random weights, made by the --make script in bench/ with PY when it is missing;
// default make_gpt2_124m.py). Tokens are
// (i * 7919 + 13) mod vocab, every position real. The step is one graph: the
// forward pass, the loss, every gradient and the update, the weights and the
// AdamW state donated to it; its median over a few runs after a warm-up (which
// builds the plan, reads the weights from the file and makes the state). Peak memory, both measured the same
// way: the highest resident set size during the steps (sampled every
// millisecond) less the resident size before the first step (the weights already
// in memory); for Scribe also the executor's own count of live buffers
// (activations, gradients) and the constants it computed once and keeps.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <exception>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <scribe/cpu.hpp>
#include <scribe/models/registry.hpp>
#include <scribe/hlo/export.hpp>
#include <scribe/runtime/trainer.hpp>
#include <scribe/runtime/weight_files.hpp>
#include <scribe/train/causal_lm.hpp>
#include <scribe/train/precision.hpp>

#ifdef SCRIBE_WITH_MPI
#include <scribe/parallel/mpi.hpp>
#endif

#include "limits.hpp"
#include "timing.hpp"
#include "profile.hpp"

using namespace scribe;
namespace fs = std::filesystem;

namespace {

std::size_t rss_bytes() {
    std::ifstream f("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    f >> pages >> resident;
    return resident * 4096;
}

// The highest resident size while it lives, sampled every millisecond.
class rss_peak {
public:
    rss_peak() : base_(rss_bytes()), peak_(base_), t_([this] {
        while (!done_) {
            peak_ = std::max<std::size_t>(peak_, rss_bytes());
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }) {}
    ~rss_peak() { stop(); }
    std::size_t stop() {
        done_ = true;
        if (t_.joinable()) t_.join();
        return peak_ - base_;
    }

private:
    std::size_t base_;
    std::atomic<std::size_t> peak_;
    std::atomic<bool> done_{false};
    std::thread t_;
};

struct options {
    fs::path model, dir = fs::temp_directory_path() / "train_bench";
    std::string python, xla_python, json_path, make = "make_gpt2_124m.py";
    std::vector<unsigned> threads{1, 2};
    std::int64_t batch = 4, seq = 256;
    bool profile = false;  // --profile 1: where a step's time goes, per op and shape
    int dp = 2;            // data-parallel ranks measured (0: none)
    int dp_steps = 5;      // timed steps of a data-parallel run (a fixed count: MPI ranks step together)
    std::string worker_out;  // set in the mpirun children: where rank 0 writes its result
    std::vector<train::precision> precisions;  // --precision: modes measured besides f32
};

struct result {
    double seconds = 0, loss = 0;
    double dot_flops = 0;  // the step graph's products, as built
    std::size_t peak_rss = 0;
    std::int64_t parameters = 0;
};

// The step graph as step.hlo in o.dir, with params.json saying where each input
// comes from (bench/xla_train.py reads them): the weights from the checkpoint, the
// optimizer state at zero, the batch from raw files written here.
template <class Family>
void export_step(const options& o, const graph& g, const runtime::weight_files<Family>& files, const std::vector<std::int32_t>& ids,
                 const std::vector<std::int32_t>& lengths) {
    fs::create_directories(o.dir);
    (void)hlo::write(g, o.dir, "step");
    std::ofstream(o.dir / "ids.bin", std::ios::binary).write(reinterpret_cast<const char*>(ids.data()), static_cast<std::streamsize>(ids.size() * 4));
    std::ofstream(o.dir / "lengths.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(lengths.data()), static_cast<std::streamsize>(lengths.size() * 4));
    nlohmann::json params = nlohmann::json::array(), aliases = nlohmann::json::array();
    for (auto id : g.parameters()) {
        const auto& n = g[id];
        std::vector<std::int64_t> extents;
        for (const auto& d : n.dims) extents.push_back(d.extent);
        std::string source = "zeros";
        if (n.label == "ids" || n.label == "lengths") source = "file:" + (o.dir / (n.label + ".bin")).string();
        for (std::size_t i = 0; i < files.specs().size(); ++i)
            if (files.specs()[i].name == n.label) source = "weight:" + files.at(0, i).file->path().string() + ":" + files.at(0, i).name;
        params.push_back({{"name", n.label}, {"dtype", std::string(name(n.type))}, {"shape", extents}, {"source", source}});
    }
    for (const auto& a : g.aliases()) aliases.push_back({{"output", a.output}, {"parameter", a.parameter_number}});
    std::ofstream(o.dir / "params.json") << nlohmann::json{{"parameters", params}, {"aliases", aliases}}.dump() << "\n";
}

nlohmann::json run_xla(const options& o, unsigned threads) {
    const auto cmd = o.xla_python + " " + (fs::path(SCRIBE_SOURCE_DIR) / "bench" / "xla_train.py").string() + " " + o.dir.string() +
                     " " + std::to_string(threads);
    std::fflush(stdout);
    if (std::system(cmd.c_str()) != 0) throw error("train_bench: `" + cmd + "` failed");
    std::ifstream f(o.dir / ("xla_" + std::to_string(threads) + ".json"));
    return nlohmann::json::parse(f);
}

template <class Family>
result measure(const options& o, unsigned threads, bool export_for_xla, train::precision mode = train::precision::f32) {
    const auto c = models::load_config<typename Family::config>(o.model / "config.json");
    const runtime::weight_files<Family> files(o.model, c, 1, {0});
    auto weights = files.arrays(0, train::weight_type(mode));
    std::vector<std::int32_t> ids(static_cast<std::size_t>(o.batch * o.seq)), lengths(static_cast<std::size_t>(o.batch), static_cast<std::int32_t>(o.seq));
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>((i * 7919 + 13) % static_cast<std::size_t>(c.vocab_size));
    const cpu::named_arrays batch = {
        {"ids", cpu::array::borrow(dtype::s32, {{"batch", o.batch}, {"seq", o.seq}}, ids.data(), ids.size() * 4)},
        {"lengths", cpu::array::borrow(dtype::s32, {{"batch", o.batch}}, lengths.data(), lengths.size() * 4)}};
    // The weights' pages read in before the baseline, as PyTorch holds its weights
    // before its own: the peak then counts what the step makes, not the file.
    volatile unsigned char touched = 0;
    for (const auto& [_, a] : weights)
        for (std::size_t k = 0; k < a.bytes(); k += 4096) touched = touched ^ a.data()[k];
    train::update_options u{.method = train::adamw{.weight_decay = 0.01}, .lr = {.lr = 1e-5}, .clip = 1.0};
    u.decays = train::decays_matrices(files.specs());
    train::apply(mode, u, 0);
    auto loss_of = [&](graph& g) { return train::causal_lm_loss_in<Family>(mode, g, c, {.batch = o.batch, .seq = o.seq}).id(); };
    result r;
    rss_peak peak;  // from before the first step, as torch_train.py measures
    runtime::trainer t(loss_of, std::move(weights), {.update = u, .threads = threads});
    auto step = [&] { (void)t.step(batch); };
    r.loss = t.step(batch).loss;  // warm-up: the plan made, the weights read from the file, the state made
    r.seconds = bench::median_seconds(step, 10.0, 3);
    r.peak_rss = peak.stop();
    for (const auto& [_, a] : t.weights()) r.parameters += a.size();
    r.dot_flops = bench::dot_flops(t.step_graph());
    if (export_for_xla) export_step(o, t.step_graph(), files, ids, lengths);
    // Profiled after the measurements, so that its second trainer's weights and
    // state are not counted in the peak memory.
    if (o.profile) {
        runtime::trainer p(loss_of, files.arrays(0, train::weight_type(mode)), {.update = u, .threads = threads, .profile = true});
        (void)p.step(batch);
        constexpr int runs = 3;
        std::vector<double> seconds(p.step_graph().nodes().size());
        double total = 0;
        for (int k = 0; k < runs; ++k) {
            const auto t0 = std::chrono::steady_clock::now();
            (void)p.step(batch);
            total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / runs;
            for (std::size_t i = 0; i < seconds.size(); ++i) seconds[i] += p.last_stats().node_seconds[i] / runs;
        }
        bench::print_profile(p.step_graph(), seconds, total,
                             "training step, " + std::string(train::name(mode)) + ", " + std::to_string(threads) + " thread(s)", 25);
        bench::print_memory(p.step_graph(), p.planned_peak(), "training step's memory");
    }

    return r;
}

// One rank's part of a data-parallel step: `ranks` ranks of 1 thread each, rank r
// on rows r B/N .. of the batch, the gradients averaged through `comm`. Returns
// the median seconds of a step (dp_steps of them after a warm-up) and the first
// step's loss, as this rank saw them.
template <class Family>
std::pair<double, double> dp_rank(const options& o, int ranks, cpu::communicator& comm) {
    const auto c = models::load_config<typename Family::config>(o.model / "config.json");
    const runtime::weight_files<Family> files(o.model, c, 1, {0});
    const auto rows = o.batch / ranks;
    std::vector<std::int32_t> ids(static_cast<std::size_t>(o.batch * o.seq)), lengths(static_cast<std::size_t>(rows), static_cast<std::int32_t>(o.seq));
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>((i * 7919 + 13) % static_cast<std::size_t>(c.vocab_size));
    const auto* mine = ids.data() + static_cast<std::ptrdiff_t>(comm.rank() * rows * o.seq);
    const cpu::named_arrays batch = {
        {"ids", cpu::array::borrow(dtype::s32, {{"batch", rows}, {"seq", o.seq}}, mine, static_cast<std::size_t>(rows * o.seq) * 4)},
        {"lengths", cpu::array::borrow(dtype::s32, {{"batch", rows}}, lengths.data(), lengths.size() * 4)}};
    train::update_options u{.method = train::adamw{.weight_decay = 0.01}, .lr = {.lr = 1e-5}, .clip = 1.0};
    u.decays = train::decays_matrices(files.specs());
    u.dp.replicas = ranks;
    runtime::trainer t([&](graph& g) { return train::causal_lm_loss<Family, f32>(g, c, {.batch = rows, .seq = o.seq}).id(); },
                       files.arrays(0, dtype::f32), {.update = u, .threads = 1, .comm = &comm});
    const double loss = t.step(batch).loss;
    std::vector<double> seconds;
    for (int k = 0; k < o.dp_steps; ++k) {
        const auto t0 = std::chrono::steady_clock::now();
        (void)t.step(batch);
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(seconds.begin(), seconds.end());
    return {seconds[seconds.size() / 2], loss};
}

// Data parallel with the ranks as threads of this process: rank 0's figures.
template <class Family>
std::pair<double, double> dp_threads(const options& o, int ranks) {
    cpu::thread_group group(ranks);
    std::vector<std::pair<double, double>> out(static_cast<std::size_t>(ranks));
    std::vector<std::exception_ptr> failed(static_cast<std::size_t>(ranks));
    std::vector<std::thread> threads;
    for (int r = 0; r < ranks; ++r)
        threads.emplace_back([&, r] {
            try {
                out[static_cast<std::size_t>(r)] = dp_rank<Family>(o, ranks, group[r]);
            } catch (...) {
                failed[static_cast<std::size_t>(r)] = std::current_exception();
                group[r].abort();
            }
        });
    for (auto& t : threads) t.join();
    for (auto& e : failed)
        if (e) std::rethrow_exception(e);
    return out.front();
}

std::string self_path() {
    std::vector<char> buf(4096);
    const auto n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
    if (n <= 0) throw error("train_bench: cannot find its own path");
    return std::string(buf.data(), static_cast<std::size_t>(n));
}

// Data parallel with the ranks as MPI processes (this program under mpirun): rank 0's figures.
std::optional<std::pair<double, double>> dp_mpi(const options& o) {
#ifdef SCRIBE_WITH_MPI
    const auto out = fs::temp_directory_path() / ("scribe_train_bench_" + std::to_string(::getpid()) + ".json");
    const std::string cmd = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np " + std::to_string(o.dp) +
                            " --oversubscribe --bind-to none " + self_path() + " --model " + o.model.string() + " --batch " +
                            std::to_string(o.batch) + " --seq " + std::to_string(o.seq) + " --dp-steps " + std::to_string(o.dp_steps) +
                            " --worker-out " + out.string();
    std::fflush(stdout);
    if (std::system(cmd.c_str()) != 0) {
        std::printf("train_bench: `%s` failed: no MPI figures\n", cmd.c_str());
        return std::nullopt;
    }
    std::ifstream in(out);
    const auto j = nlohmann::json::parse(in);
    fs::remove(out);
    return std::pair{j["seconds"].get<double>(), j["loss"].get<double>()};
#else
    (void)o;
    std::printf("train_bench: built without MPI (libopenmpi-dev): no MPI figures\n");
    return std::nullopt;
#endif
}

int worker([[maybe_unused]] int argc, [[maybe_unused]] char** argv, [[maybe_unused]] const options& o) {
#ifdef SCRIBE_WITH_MPI
    parallel::mpi_session mpi(&argc, &argv);
    const auto [seconds, loss] =
        models::with_family(o.model, [&]<class Family>() { return dp_rank<Family>(o, mpi.size(), mpi.world()); });
    if (mpi.rank() == 0) std::ofstream(o.worker_out) << nlohmann::json{{"seconds", seconds}, {"loss", loss}}.dump() << "\n";
    return 0;
#else
    throw error("train_bench: --worker-out needs a build with MPI");
#endif
}

nlohmann::json run_torch(const options& o, unsigned threads, bool autocast = false) {
    const auto out = fs::temp_directory_path() / ("torch_train_" + std::to_string(threads) + ".json");
    const auto cmd = o.python + " " + (fs::path(SCRIBE_SOURCE_DIR) / "bench" / "torch_train.py").string() + " " +
                     o.model.string() + " --threads " + std::to_string(threads) + " --batch " + std::to_string(o.batch) +
                     " --seq " + std::to_string(o.seq) + (autocast ? " --autocast" : "") + " --json " + out.string() + " > /dev/null";
    std::fflush(stdout);
    if (std::system(cmd.c_str()) != 0) throw error("train_bench: `" + cmd + "` failed");
    std::ifstream f(out);
    return nlohmann::json::parse(f);
}

std::vector<unsigned> parse_threads(const std::string& s) {
    std::vector<unsigned> out;
    std::stringstream in(s);
    for (std::string part; std::getline(in, part, ',');)
        out.push_back(static_cast<unsigned>(bench::parse_count(part, "--threads", "train_bench", 1, 1024)));
    if (out.empty()) throw scribe::error("train_bench: --threads takes thread counts separated by commas, not \"" + s + "\"");
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        options o;
        for (int i = 1; i + 1 < argc; i += 2) {
            const std::string a = argv[i], v = argv[i + 1];
            if (a == "--model") o.model = v;
            else if (a == "--python") o.python = v;
            else if (a == "--xla-python") o.xla_python = v;
            else if (a == "--dir") o.dir = v;
            else if (a == "--make") o.make = v;
            else if (a == "--json") o.json_path = v;
            else if (a == "--threads") o.threads = parse_threads(v);
            else if (a == "--batch") o.batch = bench::parse_count(v, a, "train_bench", 1, 1 << 16);
            else if (a == "--seq") o.seq = bench::parse_count(v, a, "train_bench", 1, 1 << 20);
            else if (a == "--profile") o.profile = v == "1";
            else if (a == "--dp") o.dp = static_cast<int>(bench::parse_count(v, a, "train_bench", 0, 1024));
            else if (a == "--dp-steps") o.dp_steps = static_cast<int>(bench::parse_count(v, a, "train_bench", 1, 1 << 20));
            else if (a == "--worker-out") o.worker_out = v;
            else if (a == "--precision") {
                std::stringstream in(v);
                for (std::string part; std::getline(in, part, ',');) o.precisions.push_back(train::parse_precision(part));
            }
            else throw error("train_bench: unknown flag " + a);
        }
        if (o.model.empty())
            throw error("usage: train_bench --model DIR [--python PY] [--threads 1,2] [--batch 4] [--seq 256] [--dp 2] [--json FILE]");
        if (o.dp < 0 || o.dp_steps < 1) throw error("train_bench: --dp needs 0 or more ranks, --dp-steps 1 or more steps");
        if (!o.worker_out.empty()) return worker(argc, argv, o);
        if (!o.python.empty() && !fs::exists(o.python)) {
            std::printf("train_bench: no Python at %s (scripts/setup.sh: scribe_setup_reference); PyTorch is not measured\n",
                        o.python.c_str());
            o.python.clear();
        }
        if (!o.xla_python.empty() && !fs::exists(o.xla_python)) {
            std::printf("train_bench: no Python at %s (scripts/setup.sh installs jax there); XLA is not measured\n", o.xla_python.c_str());
            o.xla_python.clear();
        }
        if (!fs::exists(o.model / "model.safetensors")) {
            if (o.python.empty()) {
                std::printf("train_bench: no checkpoint at %s and no Python to make it; skipped\n", o.model.c_str());
                return 0;
            }
            const auto cmd = o.python + " " + (fs::path(SCRIBE_SOURCE_DIR) / "bench" / o.make).string() + " " + o.model.string();
            if (std::system(cmd.c_str()) != 0) throw error("train_bench: `" + cmd + "` failed");
        }
        const double tokens = static_cast<double>(o.batch * o.seq);
        nlohmann::json report = {{"model", o.model.string()}, {"batch", o.batch}, {"seq", o.seq}, {"rows", nlohmann::json::array()}};
        std::printf("training step (forward, backward, clipping, AdamW), batch %lld x %lld tokens, f32: %s\n",
                    static_cast<long long>(o.batch), static_cast<long long>(o.seq), o.model.c_str());
        std::printf("%-8s %10s %10s %10s %8s %10s %8s %10s | %14s %14s %14s\n", "threads", "peak GF/s", "scribe s", "pytorch s",
                    "vs pt", "xla s", "vs xla", "% of peak", "scribe peak", "pytorch peak", "xla peak");
        for (auto t : o.threads) {
            scribe::cpu::thread_pool pool(t);
            const double peak_gflops = bench::fma_peak_gflops(pool);
            const bool xla = !o.xla_python.empty();
            const auto r = models::with_family(o.model, [&]<class Family>() { return measure<Family>(o, t, xla && t == o.threads.front()); });
            // 2 FLOPs per multiply-add: forward 2 x params x tokens, backward twice that.
            const double flops = 6.0 * static_cast<double>(r.parameters) * tokens;
            const double fraction = flops / r.seconds / (peak_gflops * 1e9);
            // The same against the FLOPs of the step's products themselves: 6 x params
            // x tokens counts an input embedding (a gather) as a product and leaves out
            // attention's score products. The peers compute the same products.
            const auto dots_fraction = [&](double seconds) { return seconds > 0 ? r.dot_flops / seconds / (peak_gflops * 1e9) : 0.0; };
            nlohmann::json row = {{"threads", t}, {"fma_peak_gflops", peak_gflops}, {"parameters", r.parameters},
                                  {"scribe_seconds", r.seconds}, {"scribe_tokens_per_second", tokens / r.seconds},
                                  {"scribe_fraction_of_peak", fraction}, {"step_dot_flops", r.dot_flops},
                                  {"scribe_fraction_of_peak_dots", dots_fraction(r.seconds)},
                                  {"scribe_loss", r.loss}, {"scribe_peak_rss_bytes", r.peak_rss}};
            double torch_s = 0;
            std::size_t torch_peak = 0;
            if (!o.python.empty()) {
                const auto p = run_torch(o, t);
                torch_s = p["step_seconds"].get<double>();
                torch_peak = p["peak_bytes"].get<std::size_t>();
                row["pytorch"] = p;
            }
            double xla_s = 0;
            std::size_t xla_peak = 0;
            if (xla) {
                const auto p = run_xla(o, t);
                xla_s = p["step_seconds"].get<double>();
                xla_peak = p["peak_bytes"].get<std::size_t>();
                row["xla"] = p;
            }
            // Each peer's first step starts from the same weights on the same batch.
            if (!o.python.empty() || xla)
                std::printf("         first step's loss: scribe %.6f, pytorch %.6f, xla %.6f\n", r.loss,
                            row.contains("pytorch") ? row["pytorch"]["loss"].get<double>() : 0.0,
                            row.contains("xla") ? row["xla"]["loss"].get<double>() : 0.0);
            if (torch_s > 0) row["pytorch_fraction_of_peak_dots"] = dots_fraction(torch_s);
            if (xla_s > 0) row["xla_fraction_of_peak_dots"] = dots_fraction(xla_s);
            const double mib = 1024.0 * 1024.0;
            std::printf("%-8u %10.0f %10.3f %10.3f %7.2fx %10.3f %7.2fx %9.1f%% | %10.0f MiB %10.0f MiB %10.0f MiB\n", t, peak_gflops,
                        r.seconds, torch_s, torch_s > 0 ? torch_s / r.seconds : 0.0, xla_s, xla_s > 0 ? xla_s / r.seconds : 0.0,
                        100 * fraction, static_cast<double>(r.peak_rss) / mib, static_cast<double>(torch_peak) / mib,
                        static_cast<double>(xla_peak) / mib);
            std::printf("         the step's products: %.0f GFLOP; at each one's step time, of the peak: scribe %.1f%%, pytorch %.1f%%, xla %.1f%%\n",
                        r.dot_flops / 1e9, 100 * dots_fraction(r.seconds), 100 * dots_fraction(torch_s), 100 * dots_fraction(xla_s));
            report["rows"].push_back(row);
        }
        // Data parallel on the same cores: N ranks of 1 thread each against 1 rank of N threads.
        if (o.dp > 1 && o.batch % o.dp == 0) {
            const auto one = std::find_if(report["rows"].begin(), report["rows"].end(),
                                          [&](const auto& r) { return r["threads"].template get<int>() == o.dp; });
            const double single = one == report["rows"].end() ? 0.0 : (*one)["scribe_seconds"].template get<double>();
            const auto thr = models::with_family(o.model, [&]<class Family>() { return dp_threads<Family>(o, o.dp); });
            const auto mpi = dp_mpi(o);
            auto line = [&](const char* what, double seconds, double loss) {
                std::printf("DP %d %-9s %10.3f s a step, %8.0f tokens/s (%5.1f%% of 1 rank x %d threads' %.3f s); first loss %.6f\n", o.dp,
                            what, seconds, tokens / seconds, single > 0 ? 100 * single / seconds : 0.0, o.dp, single, loss);
            };
            line("threads", thr.first, thr.second);
            report["dp"] = {{"ranks", o.dp}, {"one_rank_seconds", single}, {"threads_seconds", thr.first}, {"threads_loss", thr.second}};
            if (mpi) {
                line("processes", mpi->first, mpi->second);
                report["dp"]["mpi_seconds"] = mpi->first;
                report["dp"]["mpi_loss"] = mpi->second;
            }
        }
        // The precision modes at the last thread count, against Scribe's f32 step and
        // PyTorch's bf16 autocast step (torch.autocast("cpu", torch.bfloat16)).
        if (!o.precisions.empty()) {
            const auto t = o.threads.back();
            const auto f32_row = std::find_if(report["rows"].begin(), report["rows"].end(),
                                              [&](const auto& r) { return r["threads"].template get<unsigned>() == t; });
            const double f32_s = f32_row == report["rows"].end() ? 0.0 : (*f32_row)["scribe_seconds"].template get<double>();
            double torch_autocast = 0;
            if (!o.python.empty()) {
                const auto p = run_torch(o, t, true);
                torch_autocast = p["step_seconds"].get<double>();
                report["pytorch_autocast"] = p;
            }
            std::printf("precision modes, %u thread(s): PyTorch bf16 autocast %.3f s a step (%.0f tokens/s)\n", t, torch_autocast,
                        torch_autocast > 0 ? tokens / torch_autocast : 0.0);
            std::printf("%-12s %10s %10s %12s %14s %10s\n", "precision", "scribe s", "tokens/s", "vs f32 step", "vs pt autocast", "first loss");
            for (const auto mode : o.precisions) {
                const auto r = models::with_family(o.model, [&]<class Family>() { return measure<Family>(o, t, false, mode); });
                std::printf("%-12s %10.3f %10.0f %11.2fx %13.2fx %10.5f\n", std::string(train::name(mode)).c_str(), r.seconds,
                            tokens / r.seconds, f32_s > 0 ? f32_s / r.seconds : 0.0,
                            torch_autocast > 0 ? torch_autocast / r.seconds : 0.0, r.loss);
                report["precision"].push_back({{"precision", std::string(train::name(mode))}, {"threads", t}, {"scribe_seconds", r.seconds},
                                               {"vs_f32", f32_s > 0 ? f32_s / r.seconds : 0.0},
                                               {"vs_pytorch_autocast", torch_autocast > 0 ? torch_autocast / r.seconds : 0.0},
                                               {"loss", r.loss}});
            }
        }
        if (!o.json_path.empty()) std::ofstream(o.json_path) << report.dump(2) << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
