// One training step's forward and backward pass of a decoder (causal-LM loss,
// train::causal_lm_loss, and the gradient of every weight, graph/grad.hpp) on the
// CPU, against PyTorch's loss.backward() (bench/torch_train.py: Hugging Face
// AutoModelForCausalLM, eager, float32) on the same checkpoint in the same run:
// seconds per step and tokens/s at 1 and 2 threads, and the step's peak memory.
//
//   train_bench --model DIR [--python PY] [--threads 1,2] [--batch 4] [--seq 128] [--json FILE]
//
// DIR is any family's folder (decoder_bench's GPT-2 124M with random weights,
// made by bench/make_gpt2_124m.py with PY when it is missing). Tokens are
// (i * 7919 + 13) mod vocab, every position real. The step is one graph: the
// forward pass, the loss and every gradient, run by one executor; its median over
// a few runs after a warm-up (which builds the plan and packs nothing: every
// weight is read as it lies in the file). Peak memory, both measured the same
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
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <scribe/cpu.hpp>
#include <scribe/models/registry.hpp>
#include <scribe/runtime/weight_files.hpp>
#include <scribe/train/causal_lm.hpp>

#include "timing.hpp"

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
    fs::path model;
    std::string python, json_path;
    std::vector<unsigned> threads{1, 2};
    std::int64_t batch = 4, seq = 128;
};

struct result {
    double seconds = 0, loss = 0;
    std::size_t peak_rss = 0, peak_live = 0, kept = 0;
};

template <class Family>
result measure(const options& o, unsigned threads) {
    const auto c = models::load_config<typename Family::config>(o.model / "config.json");
    const runtime::weight_files<Family> files(o.model, c, 1, {0});
    graph g("train_step");
    const auto loss = train::causal_lm_loss<Family, f32>(g, c, {.batch = o.batch, .seq = o.seq});
    std::vector<node_id> wrt;
    for (const auto& s : files.specs()) wrt.push_back(*g.find_parameter(s.name));
    auto outs = gradients(g, loss.id(), wrt);
    outs.insert(outs.begin(), loss.id());
    g.set_outputs(outs);
    std::vector<cpu::array> held;
    std::vector<cpu::input> in;
    held.reserve(files.specs().size());
    for (std::size_t i = 0; i < files.specs().size(); ++i) {
        const auto& s = files.specs()[i];
        const auto& src = files.at(0, i);
        const auto bytes = src.file->bytes(src.name);
        if (src.file->entry(src.name).type != dtype::f32) throw error("train_bench: " + s.name + " is not stored in f32");
        held.push_back(cpu::array::borrow(dtype::f32, s.dims, bytes.data(), bytes.size()));
        in.push_back({s.name, held.back()});
    }
    std::vector<std::int32_t> ids(static_cast<std::size_t>(o.batch * o.seq)), lengths(static_cast<std::size_t>(o.batch), static_cast<std::int32_t>(o.seq));
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>((i * 7919 + 13) % static_cast<std::size_t>(c.vocab_size));
    auto ids_a = cpu::array::borrow(dtype::s32, {{"batch", o.batch}, {"seq", o.seq}}, ids.data(), ids.size() * 4);
    auto len_a = cpu::array::borrow(dtype::s32, {{"batch", o.batch}}, lengths.data(), lengths.size() * 4);
    in.push_back({"ids", ids_a});
    in.push_back({"lengths", len_a});
    // The weights' pages read in before the baseline, as PyTorch holds its weights
    // before its own: the peak then counts what the step makes, not the file.
    volatile unsigned char touched = 0;
    for (const auto& a : held)
        for (std::size_t k = 0; k < a.bytes(); k += 4096) touched = touched ^ a.data()[k];
    cpu::executor ex(g, {.threads = threads});
    result r;
    auto step = [&] { r.loss = ex(std::span<const cpu::input>(in))[0].values<float>()[0]; };
    rss_peak peak;  // from before the first step, as torch_train.py measures
    step();         // warm-up: the weights' pages read in, the plan made
    r.seconds = bench::median_seconds(step, 10.0, 3);
    r.peak_rss = peak.stop();
    r.peak_live = ex.stats().peak_bytes;
    r.kept = ex.stats().folded_bytes;
    return r;
}

nlohmann::json run_torch(const options& o, unsigned threads) {
    const auto out = fs::temp_directory_path() / ("torch_train_" + std::to_string(threads) + ".json");
    const auto cmd = o.python + " " + (fs::path(SCRIBE_SOURCE_DIR) / "bench" / "torch_train.py").string() + " " +
                     o.model.string() + " --threads " + std::to_string(threads) + " --batch " + std::to_string(o.batch) +
                     " --seq " + std::to_string(o.seq) + " --json " + out.string() + " > /dev/null";
    std::fflush(stdout);
    if (std::system(cmd.c_str()) != 0) throw error("train_bench: `" + cmd + "` failed");
    std::ifstream f(out);
    return nlohmann::json::parse(f);
}

std::vector<unsigned> parse_threads(const std::string& s) {
    std::vector<unsigned> out;
    std::stringstream in(s);
    for (std::string part; std::getline(in, part, ',');) out.push_back(static_cast<unsigned>(std::stoul(part)));
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
            else if (a == "--json") o.json_path = v;
            else if (a == "--threads") o.threads = parse_threads(v);
            else if (a == "--batch") o.batch = std::stoll(v);
            else if (a == "--seq") o.seq = std::stoll(v);
            else throw error("train_bench: unknown flag " + a);
        }
        if (o.model.empty())
            throw error("usage: train_bench --model DIR [--python PY] [--threads 1,2] [--batch 4] [--seq 128] [--json FILE]");
        if (!o.python.empty() && !fs::exists(o.python)) {
            std::printf("train_bench: no Python at %s (scripts/setup.sh: scribe_setup_reference); PyTorch is not measured\n",
                        o.python.c_str());
            o.python.clear();
        }
        if (!fs::exists(o.model / "model.safetensors")) {
            if (o.python.empty()) {
                std::printf("train_bench: no checkpoint at %s and no Python to make it; skipped\n", o.model.c_str());
                return 0;
            }
            const auto cmd = o.python + " " + (fs::path(SCRIBE_SOURCE_DIR) / "bench" / "make_gpt2_124m.py").string() + " " + o.model.string();
            if (std::system(cmd.c_str()) != 0) throw error("train_bench: `" + cmd + "` failed");
        }
        const double tokens = static_cast<double>(o.batch * o.seq);
        nlohmann::json report = {{"model", o.model.string()}, {"batch", o.batch}, {"seq", o.seq}, {"rows", nlohmann::json::array()}};
        std::printf("training step (forward + backward, every gradient), batch %lld x %lld tokens, f32: %s\n",
                    static_cast<long long>(o.batch), static_cast<long long>(o.seq), o.model.c_str());
        std::printf("%-8s %12s %12s %8s | %14s %14s %14s %14s\n", "threads", "scribe s", "pytorch s", "ratio", "scribe peak", "(live bufs)",
                    "(kept consts)", "pytorch peak");
        for (auto t : o.threads) {
            const auto r = models::with_family(o.model, [&]<class Family>() { return measure<Family>(o, t); });
            nlohmann::json row = {{"threads", t}, {"scribe_seconds", r.seconds}, {"scribe_tokens_per_second", tokens / r.seconds},
                                  {"scribe_loss", r.loss}, {"scribe_peak_rss_bytes", r.peak_rss},
                                  {"scribe_peak_live_bytes", r.peak_live}, {"scribe_kept_constant_bytes", r.kept}};
            double torch_s = 0;
            std::size_t torch_peak = 0;
            if (!o.python.empty()) {
                const auto p = run_torch(o, t);
                torch_s = p["step_seconds"].get<double>();
                torch_peak = p["peak_bytes"].get<std::size_t>();
                row["pytorch"] = p;
            }
            const double mib = 1024.0 * 1024.0;
            std::printf("%-8u %12.3f %12.3f %7.2fx | %11.0f MiB %11.0f MiB %11.0f MiB %11.0f MiB\n", t, r.seconds, torch_s,
                        torch_s > 0 ? torch_s / r.seconds : 0.0, static_cast<double>(r.peak_rss) / mib,
                        static_cast<double>(r.peak_live) / mib, static_cast<double>(r.kept) / mib, static_cast<double>(torch_peak) / mib);
            report["rows"].push_back(row);
        }
        if (!o.json_path.empty()) std::ofstream(o.json_path) << report.dump(2) << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
