// bench/encoder_bench.cpp — an encoder end to end: sequences/s of a BERT-base-shaped
// sequence classifier (bench/make_bert_base.py: random weights) at 128 tokens,
// batch 1 and 8, f32 and bf16, on 1 and 2 threads, against PyTorch CPU
// (bench/torch_encoder.py: AutoModelForSequenceClassification, SDPA attention) on
// the same checkpoint in the same run, and against the machine's compute peak
// measured now (the f32 FMA peak; for bf16 the faster of that and the bf16 dot
// peak, AMX's where it has AMX, else AVX512_BF16's: bf16 products run on the
// pair kernels only where they outrun the FMAs).
//
//   encoder_bench --model DIR [--make make_bert_base.py] [--python PY] [--dir WORK]
//                 [--json FILE] [--threads 1,2] [--dtypes f32,bf16] [--batches 1,8]
//                 [--budget 3] [--rounds 3]
//   encoder_bench --model DIR --profile [--threads 1] [--dtypes f32] [--batches 8]
//                 where the time goes, per op kind and node (the executor's profile)
//
// The peer and Scribe run in turn, --rounds times per thread count (each round
// every cell of PyTorch's, then every cell of ours), and each figure is the median
// over the rounds: this machine is a shared host whose speed drifts by 5-10 %
// over minutes, which a single pass of one engine after the other put into the
// ratio. The table also gives the lowest and highest ratio of one round.
//
// Scribe runs what `scribe classify` runs: the graph without the mean-pooled
// embedding, whose last layer computes the [CLS] row only past its keys and values
// (runtime::encode_options). PyTorch's classifier computes every row.
//
// The flop of one sequence: 2 x (the weights multiplied in dots) per token, and the
// attention's two products (2 x 2 x seq x hidden per token and layer) — the whole
// model's, for both engines, so both figures count the same work. Scribe skips
// 1.55 GFLOP of it (6.9 %: the last layer's other 127 rows), so its fraction of
// the peak overstates its FMAs' use by that much.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <scribe/models/registry.hpp>
#include <scribe/runtime/encoder.hpp>

#include "limits.hpp"
#include "profile.hpp"
#include "timing.hpp"

using namespace scribe;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string x; std::getline(in, x, ',');)
        if (!x.empty()) out.push_back(x);
    return out;
}

void run_command(const std::string& cmd) { bench::run_command("encoder_bench", cmd); }

struct options {
    fs::path model_dir, work = "encoder-bench", json_path;
    std::string make, python, thread_list = "1,2", dtype_list = "f32,bf16", batch_list = "1,8";
    std::int64_t seq = 128;
    double budget = 3.0;
    int rounds = 3;
    bool profile = false;
};

// Where the time goes: the encoder's own graph on an executor with profile = true,
// the checkpoint's weights bound as the encoder binds them; one warm run, then 5
// runs averaged.
void profile(const options& o, dtype type, unsigned threads, std::int64_t batch, const std::vector<std::int32_t>& ids) {
    runtime::encoder<models::bert_family> m(o.model_dir, {.type = type, .threads = threads, .buckets = {o.seq}});
    const auto& g = m.encoder_graph(o.seq, batch, {.mean = false});
    const runtime::weight_files<models::bert_family> files(o.model_dir, m.model_config(), 1, {0});
    std::map<std::string, cpu::array> weights;
    cpu::resident_weights resident;
    for (auto& [name, a] : files.arrays(0, type)) weights[name] = resident.keep(std::move(a));
    cpu::executor run(g, {.threads = threads, .profile = true});
    for (const auto& n : g.nodes())
        if (n.kind == op::parameter && weights.count(n.label)) run.bind(n.label, weights.at(n.label).view());
    std::vector<std::int32_t> all_ids, types(static_cast<std::size_t>(batch * o.seq), 0), lengths(static_cast<std::size_t>(batch), static_cast<std::int32_t>(o.seq));
    for (std::int64_t b = 0; b < batch; ++b) all_ids.insert(all_ids.end(), ids.begin(), ids.end());
    auto inputs = [&] {
        cpu::named_arrays in;
        const std::vector<dim_extent> rows = {{"batch", batch}, {"seq", o.seq}};
        in.emplace_back("ids", cpu::array::borrow(dtype::s32, rows, all_ids.data(), all_ids.size() * 4));
        in.emplace_back("token_types", cpu::array::borrow(dtype::s32, rows, types.data(), types.size() * 4));
        in.emplace_back("lengths", cpu::array::borrow(dtype::s32, {{"batch", batch}}, lengths.data(), lengths.size() * 4));
        return in;
    };
    run.run_donating(inputs());
    constexpr int runs = 5;
    std::vector<double> seconds(g.nodes().size());
    double total = 0;
    for (int r = 0; r < runs; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        run.run_donating(inputs());
        total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / runs;
        for (std::size_t i = 0; i < seconds.size(); ++i) seconds[i] += run.stats().node_seconds[i] / runs;
    }
    std::printf("fresh buffers a run: %zu\n", static_cast<std::size_t>(run.stats().fresh_buffers));
    if (std::getenv("SCRIBE_FUSION_REPORT")) std::printf("%s", run.fusion_report().c_str());
    bench::print_profile(g, seconds, total,
                         "encoder graph, " + std::string(name(type)) + ", batch " + std::to_string(batch) + ", " + std::to_string(threads) +
                             " thread(s)");
}

int run(const options& o) {
    const auto wall0 = std::chrono::steady_clock::now();
    const auto c = models::bert::config::load(o.model_dir / "config.json");
    if (c.family != models::bert::config::kind::bert) throw error("encoder_bench: the model must be a BERT, not " + c.model_type);
    // Flop per sequence: the matrices (not the embeddings) times 2 per token, and attention.
    double matrix = 0;
    for (const auto& w : models::bert_family::weights(c))
        if (w.stored.size() == 2 && w.name.find("embeddings") == std::string::npos) matrix += static_cast<double>(w.stored[0] * w.stored[1]);
    const double seq = static_cast<double>(o.seq);
    const double flop = 2 * matrix * seq + 4 * seq * seq * static_cast<double>(c.hidden * c.n_layer);
    std::printf("encoder_bench: %s, %lld tokens a sequence, %.1f GFLOP a sequence\n", models::bert_family::summary(c).c_str(),
                static_cast<long long>(o.seq), flop / 1e9);
    std::vector<std::int32_t> ids;  // the same formula as torch_encoder.py
    for (std::int64_t i = 0; i < o.seq; ++i) ids.push_back(static_cast<std::int32_t>((i * 7919 + 13) % c.vocab_size));
    if (o.profile) {
        for (const auto& t : split(o.thread_list))
            for (const auto& name : split(o.dtype_list))
                for (const auto& b : split(o.batch_list))
                    profile(o, bench::parse_dtype(name, "encoder_bench"), static_cast<unsigned>(bench::parse_count(t, "--threads", "encoder_bench", 1, 1024)), bench::parse_count(b, "--batches", "encoder_bench", 1, 4096), ids);
        return 0;
    }

    nlohmann::json report = {{"model", o.model_dir.string()}, {"seq", o.seq}, {"gflop_per_sequence", flop / 1e9},
                             {"rounds", o.rounds}, {"runs", nlohmann::json::array()}};
    for (const auto& t : split(o.thread_list)) {
        const auto threads = static_cast<unsigned>(bench::parse_count(t, "--threads", "encoder_bench", 1, 1024));
        cpu::thread_pool pool(threads);
        const double peak = bench::fma_peak_gflops(pool), bf16_peak = bench::bf16_dot_peak_gflops(pool);
        std::printf("=== %u thread(s): f32 FMA peak %.1f GFLOP/s, bf16 dot peak %.1f GFLOP/s (measured now)\n", threads, peak, bf16_peak);
        nlohmann::json run = {{"threads", threads}, {"fma_peak_gflops", peak}, {"bf16_dot_peak_gflops", bf16_peak}, {"cells", nlohmann::json::array()}};
        // One encoder per dtype, loaded once; then rounds of the peer's cells and ours
        // in turn, so that a machine whose speed drifts over minutes (a shared host)
        // weighs on both alike.
        std::vector<std::unique_ptr<runtime::encoder<models::bert_family>>> encoders;
        for (const auto& name : split(o.dtype_list))
            encoders.push_back(std::make_unique<runtime::encoder<models::bert_family>>(
                o.model_dir, runtime::load_options{.type = bench::parse_dtype(name, "encoder_bench"), .threads = threads, .buckets = {o.seq}}));
        struct cell_times {
            std::vector<double> ours, theirs;  // sequences/s, one a round
            std::string torch_error;
        };
        std::map<std::pair<std::string, std::string>, cell_times> cells;
        for (int round = 0; round < o.rounds; ++round) {
            if (!o.python.empty()) {
                nlohmann::json peer;
                const auto out = o.work / ("torch_" + t + ".json");
                run_command(o.python + " " + (fs::path(SCRIBE_SOURCE_DIR) / "bench" / "torch_encoder.py").string() + " " + o.model_dir.string() +
                            " --threads " + t + " --dtypes " + o.dtype_list + " --seq " + std::to_string(o.seq) + " --batches " + o.batch_list +
                            " --budget " + std::to_string(o.budget) + " --json " + out.string() + " >/dev/null");
                std::ifstream(out) >> peer;
                if (round == 0) run["torch_version"] = peer["torch"];
                for (const auto& name : split(o.dtype_list))
                    for (const auto& b : split(o.batch_list)) {
                        if (!peer["dtypes"].contains(name)) continue;
                        const auto& d = peer["dtypes"][name];
                        if (d.contains("error")) cells[{name, b}].torch_error = d["error"].get<std::string>();
                        else if (d.contains(b)) cells[{name, b}].theirs.push_back(d[b]["sequences_per_s"].get<double>());
                    }
            }
            std::size_t e = 0;
            for (const auto& name : split(o.dtype_list)) {
                auto& m = *encoders[e++];
                for (const auto& b : split(o.batch_list)) {
                    const std::vector<runtime::encoder_input> inputs(static_cast<std::size_t>(bench::parse_count(b, "--batches", "encoder_bench", 1, 4096)), {.ids = ids, .token_types = {}});
                    const double s = bench::median_seconds([&] { (void)m.encode(inputs, {.mean = false}); }, o.budget);
                    cells[{name, b}].ours.push_back(static_cast<double>(inputs.size()) / s);
                }
            }
        }
        std::printf("  %-5s %5s %14s %14s %8s %13s %10s\n", "dtype", "batch", "Scribe seq/s", "PyTorch seq/s", "ratio", "round ratios", "of peak");
        for (const auto& name : split(o.dtype_list))
            for (const auto& b : split(o.batch_list)) {
                const auto& c = cells[{name, b}];
                const auto batch = bench::parse_count(b, "--batches", "encoder_bench", 1, 4096);
                const double ours = bench::median(c.ours);
                const double limit = name == "bf16" ? std::max(bf16_peak, peak) : peak;
                const double fraction = ours * flop / 1e9 / limit;
                nlohmann::json cell = {{"dtype", name}, {"batch", batch}, {"scribe_sequences_per_s", ours},
                                       {"scribe_ms", static_cast<double>(batch) / ours * 1e3}, {"fraction_of_peak", fraction},
                                       {"scribe_rounds", c.ours}};
                if (!c.torch_error.empty()) cell["torch_error"] = c.torch_error;
                std::string theirs_text = "-", ratio_text = "-", range_text = "-";
                if (c.theirs.size() == c.ours.size() && !c.theirs.empty()) {
                    const double theirs = bench::median(c.theirs);
                    std::vector<double> ratios;
                    for (std::size_t r = 0; r < c.ours.size(); ++r) ratios.push_back(c.ours[r] / c.theirs[r]);
                    const auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
                    cell["torch_sequences_per_s"] = theirs;
                    cell["torch_rounds"] = c.theirs;
                    cell["ratio"] = ours / theirs;
                    cell["round_ratios"] = ratios;
                    char buf[64];
                    std::snprintf(buf, sizeof buf, "%.3f", theirs), theirs_text = buf;
                    std::snprintf(buf, sizeof buf, "%.2fx", ours / theirs), ratio_text = buf;
                    std::snprintf(buf, sizeof buf, "%.2f-%.2f", *lo, *hi), range_text = buf;
                }
                std::printf("  %-5s %5s %14.2f %14s %8s %13s %9.0f%%\n", name.c_str(), b.c_str(), ours, theirs_text.c_str(), ratio_text.c_str(),
                            range_text.c_str(), 100 * fraction);
                run["cells"].push_back(cell);
            }
        report["runs"].push_back(run);
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    std::printf("limits: of peak = sequences/s x GFLOP a sequence / the compute peak measured now (bf16: the faster of the bf16 "
                "dot peak, AMX's or AVX512_BF16's, and the f32 FMA peak)\nencoder_bench: %.0f s in all\n", wall);
    if (!o.json_path.empty()) std::ofstream(o.json_path) << report.dump(2) << "\n";
    return 0;
}

const char* usage = R"(usage: encoder_bench --model DIR [options]

Sequences/s of a BERT sequence classifier at 128 tokens on the CPU, against PyTorch
(AutoModelForSequenceClassification) on the same checkpoint in the same run, and
against the compute peak measured now.

options:
  --model DIR        the checkpoint (made by --make if missing)
  --make SCRIPT      bench/ script that makes it (make_bert_base.py)
  --python PY        a Python with torch and transformers (.venv-ref): the PyTorch peer
  --dir WORK         working folder for the peer's reports
  --json FILE        write the report as JSON
  --threads LIST     thread counts (default 1,2)
  --dtypes LIST      f32,bf16 (default both; f16 too if asked)
  --batches LIST     sequences a run (default 1,8)
  --seq N            tokens a sequence (default 128)
  --budget S         seconds of repeated runs per cell and round (default 3)
  --rounds R         rounds of the peer's cells then Scribe's, in turn (default 3):
                     the table gives each engine's median over the rounds, their
                     ratio, and the lowest and highest ratio of one round
  --profile          no benchmark: where the time of each (threads, dtype, batch) run
                     goes, per op kind and per node shape (the executor's profile)
)";

}  // namespace

int main(int argc, char** argv) try {
    options o;
    for (int i = 1; i < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") return std::printf("%s", usage), 0;
        if (a == "--profile") {
            o.profile = true;
            --i;
            continue;
        }
        if (i + 1 >= argc) throw error("encoder_bench: " + a + " needs a value");
        const std::string v = argv[i + 1];
        if (a == "--model") o.model_dir = v;
        else if (a == "--make") o.make = v;
        else if (a == "--python") o.python = v;
        else if (a == "--dir") o.work = v;
        else if (a == "--json") o.json_path = v;
        else if (a == "--threads") o.thread_list = v;
        else if (a == "--dtypes") o.dtype_list = v;
        else if (a == "--batches") o.batch_list = v;
        else if (a == "--seq") o.seq = bench::parse_count(v, a, "encoder_bench", 1, 1 << 20);
        else if (a == "--budget") o.budget = bench::parse_positive(v, a, "encoder_bench");
        else if (a == "--rounds") o.rounds = static_cast<int>(bench::parse_count(v, a, "encoder_bench", 1, 1000));
        else throw error("encoder_bench: unknown option " + a);
    }
    if (o.model_dir.empty()) throw error(std::string("--model DIR is required\n") + usage);
    fs::create_directories(o.work);
    if (!o.python.empty() && !fs::exists(o.python)) {
        std::printf("encoder_bench: no Python at %s (scribe_setup_reference in scripts/setup.sh makes .venv-ref): PyTorch is not measured\n",
                    o.python.c_str());
        o.python.clear();
    }
    if (!o.python.empty() && !o.make.empty())
        run_command(o.python + " " + (fs::path(SCRIBE_SOURCE_DIR) / "bench" / o.make).string() + " " + o.model_dir.string());
    if (!fs::exists(o.model_dir / "model.safetensors")) {
        std::fprintf(stderr, "encoder_bench: no checkpoint in %s; make one with `.venv-ref/bin/python bench/make_bert_base.py %s`\n",
                     o.model_dir.c_str(), o.model_dir.c_str());
        return 77;  // skipped
    }
    return run(o);
} catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
