// One GPT-2-sized transformer block (pre-LN attention + GELU MLP, hidden 768,
// 12 heads, ffn 3072, causal) on the CPU backend against XLA's CPU backend
// running the same exported HLO module, with the same inputs, in the same run.
//
//   block_bench [--seq N] [--python PY] [--dir DIR] [--json FILE]
//
// The graph is exported to DIR/block.hlo, its inputs to DIR/*.bin; bench/xla_block.py
// (run with PY, a Python with jax) compiles and times the module with XLA and
// writes its output back, which is compared with the CPU backend's. Both run at 1
// thread (XLA pinned to one core) and at 2. Prints a table with every figure also
// as a fraction of its peer (XLA) and limit (the FMA peak measured now: the block
// is GEMM-bound at these shapes).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "timing.hpp"

#include <scribe/cpu.hpp>
#include <scribe/nn/layers.hpp>

using namespace scribe;
using namespace scribe::nn;
namespace fs = std::filesystem;

namespace {

double median_seconds(const std::function<void()>& f) { return bench::median_seconds(f, 1.0, 5); }

// The pre-LN GPT-2 block on x[batch, seq, hidden].
template <Tensor X>
auto gpt2_block(graph& g, const X& x) {
    auto p = [&](auto spec, const char* name) { return g.parameter(spec, name); };
    auto ln1_g = p(f32[hidden], "ln_1.weight"); auto ln1_b = p(f32[hidden], "ln_1.bias");
    auto wq = p(f32[hidden, heads, head_dim], "attn.q.weight"); auto bq = p(f32[heads, head_dim], "attn.q.bias");
    auto wk = p(f32[hidden, heads, head_dim], "attn.k.weight"); auto bk = p(f32[heads, head_dim], "attn.k.bias");
    auto wv = p(f32[hidden, heads, head_dim], "attn.v.weight"); auto bv = p(f32[heads, head_dim], "attn.v.bias");
    auto wo = p(f32[heads, head_dim, hidden], "attn.c_proj.weight"); auto bo = p(f32[hidden], "attn.c_proj.bias");
    auto ln2_g = p(f32[hidden], "ln_2.weight"); auto ln2_b = p(f32[hidden], "ln_2.bias");
    auto w_fc = p(f32[hidden, ffn], "mlp.c_fc.weight"); auto b_fc = p(f32[ffn], "mlp.c_fc.bias");
    auto w_proj = p(f32[ffn, hidden], "mlp.c_proj.weight"); auto b_proj = p(f32[hidden], "mlp.c_proj.bias");

    auto h = layer_norm<hidden>(x, ln1_g, ln1_b, 1e-5);
    auto q = project_heads(h, wq, bq);
    auto k = rename<seq, keys>(project_heads(h, wk, bk));
    auto v = rename<seq, keys>(project_heads(h, wv, bv));
    auto x1 = x + merge_heads(attention(q, k, v, causal_mask(g)), wo, bo);
    auto h2 = layer_norm<hidden>(x1, ln2_g, ln2_b, 1e-5);
    return x1 + mlp(h2, w_fc, b_fc, w_proj, b_proj, [](const auto& t) { return gelu_tanh(t); });
}

}  // namespace

int main(int argc, char** argv) try {
    std::int64_t S = 128;
    std::string python, json_path;
    fs::path dir = fs::temp_directory_path() / "scribe_block_bench";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--seq") S = bench::parse_count(argv[i + 1], a, "block_bench", 1, 1 << 20);
        else if (a == "--python") python = argv[i + 1];
        else if (a == "--dir") dir = argv[i + 1];
        else if (a == "--json") json_path = argv[i + 1];
        else throw error("block_bench: unknown option " + a);
    }
    fs::create_directories(dir);

    graph g("gpt2_block");
    g.bind(batch(1), seq(S), keys(S), hidden(768), heads(12), head_dim(64), ffn(3072));
    auto x = g.parameter(f32[batch, seq, hidden], "x");
    g.outputs(gpt2_block(g, x));
    hlo::write(g, dir, "block");

    // Inputs: x ~ N(0, 1), weights ~ N(0, 0.02) (GPT-2's init), norms' scales 1.
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<std::vector<float>> data;
    std::vector<cpu::array> inputs;
    nlohmann::json manifest = nlohmann::json::array();
    double weight_flop = 0;
    std::vector<std::string> names;  // the parameters' names, in number order (XLA's argument order)
    for (auto id : g.parameters()) {
        const auto& n = g[id];
        names.push_back(n.label);
        std::vector<float> v(static_cast<std::size_t>(element_count(n.dims)));
        const bool scale = n.label.ends_with("weight") && n.dims.size() == 1;
        const float sd = n.label == "x" ? 1.0f : 0.02f;
        for (auto& e : v) e = scale ? 1.0f + 0.1f * normal(rng) : sd * normal(rng);
        if (n.dims.size() >= 2 && n.label != "x") weight_flop += 2.0 * static_cast<double>(v.size()) * static_cast<double>(S);
        const auto file = dir / ("input" + std::to_string(n.parameter_number) + ".bin");
        std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(v.data()),
                                                     static_cast<std::streamsize>(v.size() * sizeof(float)));
        std::vector<std::int64_t> extents;
        for (const auto& d : n.dims) extents.push_back(d.extent);
        manifest.push_back({{"file", file.string()}, {"shape", extents}, {"name", n.label}});
        data.push_back(std::move(v));
        inputs.push_back(cpu::array::borrow(dtype::f32, n.dims, data.back().data(), data.back().size() * sizeof(float)));
    }
    std::ofstream(dir / "inputs.json") << manifest.dump(1) << "\n";
    const auto& x_input = inputs[static_cast<std::size_t>(x.ir().parameter_number)];
    // Attention: q.k and p.v, each 2 * S * S * hidden flop (the causal half is computed in full).
    const double flop = weight_flop + 4.0 * static_cast<double>(S * S * 768);

    nlohmann::json report = {{"seq", S}, {"gflop_per_run", flop / 1e9}, {"nodes", g.nodes().size()}};
    std::printf("GPT-2 block, seq %lld: %zu graph nodes, %.2f GFLOP per run\n", static_cast<long long>(S),
                g.nodes().size(), flop / 1e9);
    std::printf("%-8s %12s %12s %9s %12s %10s\n", "threads", "scribe ms", "XLA ms", "vs XLA", "GFLOP/s", "max |diff|");
    for (unsigned threads : {1u, 2u}) {
        cpu::executor run(g, {.threads = threads});
        for (std::size_t p = 0; p < inputs.size(); ++p)
            if (names[p] != "x") run.bind(names[p], inputs[p]);  // the weights
        std::vector<cpu::array> out;
        const double ours = median_seconds([&] { out = run({{"x", x_input}}); });
        const auto got = out.front().values<float>();

        double xla = NAN, diff = NAN;
        if (!python.empty()) {
            const auto src = fs::path(SCRIBE_SOURCE_DIR) / "bench" / "xla_block.py";
            const auto cmd = python + " " + src.string() + " " + dir.string() + " " + std::to_string(threads);
            bench::run_command("block_bench", cmd);
            nlohmann::json r;
            std::ifstream(dir / ("xla_" + std::to_string(threads) + ".json")) >> r;
            xla = r["median_s"].get<double>();
            std::vector<float> ref(got.size());
            std::ifstream(dir / ("xla_out_" + std::to_string(threads) + ".bin"), std::ios::binary)
                .read(reinterpret_cast<char*>(ref.data()), static_cast<std::streamsize>(ref.size() * sizeof(float)));
            diff = 0;
            for (std::size_t i = 0; i < ref.size(); ++i) diff = std::max(diff, static_cast<double>(std::abs(ref[i] - got[i])));
        }
        std::printf("%-8u %12.2f %12.2f %8.2fx %12.1f %10.2e\n", threads, ours * 1e3, xla * 1e3, xla / ours,
                    flop / ours / 1e9, diff);
        report["runs"].push_back({{"threads", threads}, {"scribe_ms", ours * 1e3}, {"xla_ms", xla * 1e3},
                                  {"speedup_vs_xla", xla / ours}, {"scribe_gflops", flop / ours / 1e9},
                                  {"max_abs_diff", diff}, {"peak_bytes", run.stats().peak_bytes},
                                  {"packed_weight_bytes", run.stats().packed_bytes}});
    }
    if (std::getenv("SCRIBE_PROFILE")) {  // where the time goes, by op, at 1 thread
        cpu::executor run(g, {.threads = static_cast<unsigned>(std::atoi(std::getenv("SCRIBE_PROFILE"))), .profile = true});
        for (std::size_t p = 0; p < inputs.size(); ++p)
            if (names[p] != "x") run.bind(names[p], inputs[p]);
        run({{"x", x_input}});
        constexpr int runs = 20;  // per-node seconds summed over the runs, printed as a mean
        std::vector<double> seconds(g.nodes().size());
        for (int r = 0; r < runs; ++r) {
            run({{"x", x_input}});
            for (std::size_t i = 0; i < seconds.size(); ++i) seconds[i] += run.stats().node_seconds[i] / runs;
        }
        std::printf("%s", run.fusion_report().c_str());
        std::printf("buffers per run: %zu, taken fresh: %zu\n", run.stats().buffers, run.stats().fresh_buffers);
        for (std::size_t i = 0; i < g.nodes().size(); ++i)
            if (seconds[i] > 1e-5)
                std::printf("  %8.3f ms  %s#%zu %s\n", seconds[i] * 1e3, std::string(info(g.nodes()[i].kind).name).c_str(), i,
                            to_string(g.nodes()[i].dims).c_str());
    }
    if (!json_path.empty()) std::ofstream(json_path) << report.dump(2) << "\n";
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
