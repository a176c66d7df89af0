// q8 weights (ops/quantize.hpp, cpu/quantized.hpp): the quantization against
// llama.cpp's own (its `gguf` package, byte for byte), the block products of every
// instruction set against double loops, the executor's products and gathers of a
// q8 weight against double loops over the dequantized weight (and without making
// that weight), every family's decoder with q8 weights against the f32 model run
// on the dequantized weights (TP 1 and 2), and the demo model's perplexity on
// held-out text against f32's.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <scribe/cpu/executor.hpp>
#include <scribe/cpu/quantized.hpp>
#include <scribe/io/safetensors.hpp>
#include <scribe/io/tokenizer.hpp>
#include <scribe/models/registry.hpp>
#include <scribe/nn/layers.hpp>
#include <scribe/runtime/decoder.hpp>
#include <scribe/runtime/save.hpp>
#include <scribe/train/init.hpp>

#include "golden.hpp"

using namespace scribe;
using scribe_test::data;
namespace fs = std::filesystem;

namespace {

std::vector<float> floats(const cpu::array& a) {
    std::vector<float> v(static_cast<std::size_t>(a.size()));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(load_as_double(a.type(), a.data() + i * info(a.type()).bytes));
    return v;
}

// A weight's values after q8 storage, in its declared dims (what the graph reads).
cpu::array dequantized(const cpu::array& w, const q8::layout& l) { return cpu::round_trip_q8(w, l, "test weight"); }

double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0, scale = 1e-6;
    for (std::size_t i = 0; i < a.size(); ++i) {
        worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
        scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
    }
    return worst / scale;
}

}  // namespace

TEST_CASE("q8: quantization equals llama.cpp's Q8_0 (its gguf package) byte for byte") {
    // tests/data/quant/q8_0.safetensors: made by scripts/reference/make_quant_golden.py
    // with gguf.quants.quantize, rows of several scales and blocks at the rules' edges.
    const io::safetensors golden(data / "quant" / "q8_0.safetensors");
    const auto& e = golden.entry("w");
    const auto rows = e.shape[0], k = e.shape[1];
    REQUIRE(golden.entry("q").type == dtype::s8);
    REQUIRE(golden.entry("d").type == dtype::f16);
    const auto* w = reinterpret_cast<const float*>(golden.bytes("w").data());
    std::vector<std::int8_t> q(static_cast<std::size_t>(rows * k));
    std::vector<std::uint16_t> d(static_cast<std::size_t>(rows * k / 32));
    REQUIRE(cpu::simd::quantize_q8_rows(w, rows, k, q.data(), d.data()) == -1);
    CHECK(std::memcmp(q.data(), golden.bytes("q").data(), q.size()) == 0);
    CHECK(std::memcmp(d.data(), golden.bytes("d").data(), d.size() * 2) == 0);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t i = 0; i < k; ++i) {
            INFO("row " << r << ", element " << i);
            REQUIRE(static_cast<int>(q[static_cast<std::size_t>(r * k + i)]) ==
                    static_cast<int>(reinterpret_cast<const std::int8_t*>(golden.bytes("q").data())[r * k + i]));
        }

    // The same through the array form a loader uses, the weight declared [k, rows]
    // (a Conv1D weight, contracted over its first dim): transposed into rows first.
    shape dims{{"in", k}, {"out", rows}};
    auto t = cpu::array::uninitialized(dtype::f32, dims);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t i = 0; i < k; ++i) reinterpret_cast<float*>(t.mutable_data())[i * rows + r] = w[r * k + i];
    const auto l = q8::plan(dims, {"in"});
    REQUIRE(l);
    CHECK(l->transposed());
    const auto [qa, sa] = cpu::quantize_q8(t, *l, "w");
    CHECK(qa.dims() == shape{{"out", rows}, {"q8_blocks", k / 32}, {"q8_block", 32}});
    CHECK(std::memcmp(qa.data(), golden.bytes("q").data(), q.size()) == 0);
    CHECK(std::memcmp(sa.data(), golden.bytes("d").data(), d.size() * 2) == 0);
}

TEST_CASE("q8: which weights quantize, and values that cannot are refused naming the weight") {
    CHECK(q8::plan({{"ffn", 96}, {"hidden", 64}}, {"hidden"}));
    CHECK_FALSE(q8::plan({{"ffn", 96}, {"hidden", 48}}, {"hidden"}));  // k not a multiple of 32
    CHECK_FALSE(q8::plan({{"hidden", 64}}, {"hidden"}));              // a vector
    CHECK_FALSE(q8::plan({{"heads", 2}, {"head_dim", 32}}, {"heads", "head_dim"}));  // no output dim
    const auto multi = q8::plan({{"hidden", 40}, {"heads", 2}, {"head_dim", 16}}, {"heads", "head_dim"});
    REQUIRE(multi);
    CHECK(multi->rows == 40);
    CHECK(multi->k == 32);
    CHECK_FALSE(multi->transposed());

    for (const float bad : {std::nanf(""), INFINITY, 1e7f}) {
        INFO("value " << bad);
        auto w = cpu::array(dtype::f32, {{"out", 3}, {"in", 64}});
        reinterpret_cast<float*>(w.mutable_data())[2 * 64 + 40] = bad;
        const auto l = q8::plan(w.dims(), {"in"});
        REQUIRE(l);
        CHECK_THROWS_WITH(cpu::quantize_q8(w, *l, "model.safetensors: weight `h.0.mlp.c_fc.weight`"),
                          Catch::Matchers::Contains("weight `h.0.mlp.c_fc.weight`: row 2") &&
                              Catch::Matchers::Contains("f32, f16 or bf16"));
    }
}

TEST_CASE("q8: the block products of every instruction set equal a double loop") {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> qv(-127, 127);
    std::normal_distribution<float> nv(0.0f, 1.0f);
    for (const std::int64_t n : {1, 3, 4, 7, 33})
        for (const std::int64_t k : {32, 96, 2080}) {  // 2080: 65 blocks, past one stretch of scales
            std::vector<std::int8_t> q(static_cast<std::size_t>(n * k));
            std::vector<std::uint16_t> s(static_cast<std::size_t>(n * k / 32));
            std::vector<float> x(static_cast<std::size_t>(k));
            for (auto& v : q) v = static_cast<std::int8_t>(qv(rng));
            for (auto& v : s) v = f32_to_f16_bits(std::fabs(nv(rng)) * 0.01f);
            for (auto& v : x) v = nv(rng);
            std::vector<float> want(static_cast<std::size_t>(n));
            for (std::int64_t j = 0; j < n; ++j) {
                double acc = 0;
                for (std::int64_t i = 0; i < k; ++i)
                    acc += static_cast<double>(q[static_cast<std::size_t>(j * k + i)]) * f16_bits_to_f32(s[static_cast<std::size_t>(j * k / 32 + i / 32)]) *
                           x[static_cast<std::size_t>(i)];
                want[static_cast<std::size_t>(j)] = static_cast<float>(acc);
            }
            auto check = [&](const char* which, auto&& kernel) {
                INFO(which << ": n " << n << ", k " << k);
                std::vector<float> y(static_cast<std::size_t>(n), -1.0f);
                kernel(n, k, x.data(), q.data(), s.data(), y.data());
                CHECK(rel_diff(y, want) < 1e-5);
            };
            check("portable", cpu::simd::detail::q8_dots_portable);
            check("dispatched", cpu::simd::q8_dots);
#ifdef SCRIBE_X86
            if (cpu::simd::detail::has_avx2_fma_f16c()) check("avx2", cpu::simd::detail::q8_dots_avx2);
            if (cpu::simd::detail::has_avx512f()) check("avx512", cpu::simd::detail::q8_dots_avx512);
#endif
        }
}

TEST_CASE("q8: the executor multiplies and gathers a q8 weight from q and scale, never making it") {
    using namespace nn;
    std::mt19937 rng(11);
    std::normal_distribution<float> nv(0.0f, 1.0f);
    auto random = [&](dtype t, shape dims) {
        auto a = cpu::array::uninitialized(t, dims);
        auto* p = reinterpret_cast<float*>(a.mutable_data());
        for (std::int64_t i = 0; i < a.size(); ++i) p[i] = nv(rng);
        return a;
    };
    const std::int64_t H = 64, F = 96, V = 50;
    for (const std::int64_t rows : {1, 2, 9})
        for (const unsigned threads : {1u, 2u}) {
            INFO(rows << " rows, " << threads << " threads");
            graph g("q8");
            g.bind(hidden(H), ffn(F), seq(rows), heads(2), head_dim(32), vocab(V), batch(1));
            models::declaration d(g, models::weight_format::q8);
            auto linear_w = d(f32[ffn, hidden], "linear.weight");                                  // nn.Linear: [out, in]
            auto conv_w = d(f32[hidden, ffn], "conv.weight", {.in = {"hidden"}});                 // Conv1D: [in, out]
            auto proj_w = d(f32[heads, head_dim, hidden], "proj.weight", {.in = {"heads", "head_dim"}});  // two dims contracted
            auto table = d(f32[vocab, hidden], "table.weight");
            auto x = g.parameter(f32[seq, hidden], "x");
            auto ctx = g.parameter(f32[seq, heads, head_dim], "ctx");
            auto ids = g.parameter(s32[batch, seq], "ids");
            auto y1 = dot<hidden>(x, linear_w);              // [seq, ffn]
            auto y2 = dot<hidden>(x, conv_w);                // [seq, ffn]
            auto y3 = dot<heads, head_dim>(ctx, proj_w);      // [seq, hidden]
            auto e = embedding(table, ids);                  // [batch, seq, hidden]
            auto doubled = linear_w * 2.0;                   // read as a value: computed by the nodes
            g.outputs(y1, y2, y3, e, doubled);
            cpu::executor run(g, {.threads = threads});

            // The weights' float values, quantized as a loader does.
            auto make = [&](shape dims, std::vector<std::string> in, const char* name) {
                auto w = random(dtype::f32, dims);
                const auto l = q8::plan(dims, in);
                REQUIRE(l);
                auto [q, s] = cpu::quantize_q8(w, *l, name);
                run.bind(std::string(name), std::move(q));
                run.bind(q8::scale_name(name), std::move(s));
                return floats(dequantized(w, *l));
            };
            const auto lw = make({{"ffn", F}, {"hidden", H}}, {"hidden"}, "linear.weight");
            const auto cw = make({{"hidden", H}, {"ffn", F}}, {"hidden"}, "conv.weight");
            const auto pw = make({{"heads", 2}, {"head_dim", 32}, {"hidden", H}}, {"heads", "head_dim"}, "proj.weight");
            const auto tw = make({{"vocab", V}, {"hidden", H}}, {"hidden"}, "table.weight");
            const auto xa = random(dtype::f32, {{"seq", rows}, {"hidden", H}});
            const auto ca = random(dtype::f32, {{"seq", rows}, {"heads", 2}, {"head_dim", 32}});
            auto ia = cpu::array(dtype::s32, {{"batch", 1}, {"seq", rows}});
            for (std::int64_t i = 0; i < rows; ++i) reinterpret_cast<std::int32_t*>(ia.mutable_data())[i] = static_cast<std::int32_t>((i * 17 + 3) % V);
            const auto outs = run({{"x", xa}, {"ctx", ca}, {"ids", ia}});
            const auto xv = floats(xa), cv = floats(ca);

            std::vector<float> want1(static_cast<std::size_t>(rows * F)), want2(want1.size()), want3(static_cast<std::size_t>(rows * H)),
                want4(want3.size()), want5(lw.size());
            for (std::int64_t m = 0; m < rows; ++m) {
                for (std::int64_t f = 0; f < F; ++f) {
                    double a1 = 0, a2 = 0;
                    for (std::int64_t h = 0; h < H; ++h) {
                        a1 += static_cast<double>(xv[static_cast<std::size_t>(m * H + h)]) * lw[static_cast<std::size_t>(f * H + h)];
                        a2 += static_cast<double>(xv[static_cast<std::size_t>(m * H + h)]) * cw[static_cast<std::size_t>(h * F + f)];
                    }
                    want1[static_cast<std::size_t>(m * F + f)] = static_cast<float>(a1);
                    want2[static_cast<std::size_t>(m * F + f)] = static_cast<float>(a2);
                }
                for (std::int64_t h = 0; h < H; ++h) {
                    double a3 = 0;
                    for (std::int64_t c = 0; c < 64; ++c)
                        a3 += static_cast<double>(cv[static_cast<std::size_t>(m * 64 + c)]) * pw[static_cast<std::size_t>(c * H + h)];
                    want3[static_cast<std::size_t>(m * H + h)] = static_cast<float>(a3);
                    want4[static_cast<std::size_t>(m * H + h)] = tw[static_cast<std::size_t>(((m * 17 + 3) % V) * H + h)];
                }
            }
            for (std::size_t i = 0; i < lw.size(); ++i) want5[i] = 2 * lw[i];
            CHECK(rel_diff(floats(outs[0]), want1) < 1e-5);
            CHECK(rel_diff(floats(outs[1]), want2) < 1e-5);
            CHECK(rel_diff(floats(outs[2]), want3) < 1e-5);
            CHECK(floats(outs[3]) == want4);  // a gather widens exactly
            CHECK(floats(outs[4]) == want5);
            // The products and the gather made no f32 weight: only linear.weight,
            // which `doubled` reads, was computed in full.
            CHECK(run.stats().allocated_bytes < (outs[0].bytes() + outs[1].bytes() + outs[2].bytes() + outs[3].bytes()) + 3 * lw.size() * 4);
        }
}

namespace {

// A checkpoint of family F with config `base` (a tiny one from tests/data) changed
// by `sizes`, random weights of standard deviation 0.2; and the same model with
// every weight that q8 stores replaced by its dequantized values.
template <class F>
std::pair<fs::path, fs::path> q8_checkpoints(const std::string& base, const nlohmann::json& sizes) {
    const auto dir = fs::temp_directory_path() / ("scribe_test_quantized_" + std::to_string(::getpid())) / base;
    nlohmann::json config;
    std::ifstream(data / base / "config.json") >> config;
    config.update(sizes);
    fs::create_directories(dir);
    std::ofstream(dir / "config.json") << config.dump(2);
    const auto c = F::config::load(dir / "config.json");
    const auto specs = F::weights(c);
    auto weights = train::initial_weights(specs, 0.2, 5);
    runtime::save_pretrained(dir / "q8", config, specs, F::prefix, weights, dtype::f32);
    for (std::size_t i = 0; i < specs.size(); ++i)
        if (const auto l = q8::plan(specs[i].dims, specs[i].in)) weights[i].second = dequantized(weights[i].second, *l);
    runtime::save_pretrained(dir / "dequantized", config, specs, F::prefix, weights, dtype::f32);
    return {dir / "q8", dir / "dequantized"};
}

template <class F>
void check_q8_family(const std::string& base, const nlohmann::json& sizes) {
    INFO(base << " " << sizes.dump());
    const auto [q8_dir, f32_dir] = q8_checkpoints<F>(base, sizes);
    const std::vector<std::int32_t> prompt{5, 17, 2, 41, 8, 30, 11};
    runtime::decoder<F> ref(f32_dir, {.type = dtype::f32, .threads = 2});
    runtime::decoder<F> q(q8_dir, {.type = dtype::f32, .weights = models::weight_format::q8, .threads = 2});
    CHECK(q.weight_bytes() * 2 < ref.weight_bytes());  // most bytes are in the matrices
    const auto want = ref.prompt_logits(prompt);
    const auto got = q.prompt_logits(prompt);
    REQUIRE(got.size() == want.size());
    for (std::size_t t = 0; t < got.size(); ++t) {
        INFO("position " << t);
        CHECK(rel_diff(got[t], want[t]) < 1e-4);
    }
    const auto greedy = ref.generate({prompt}, {.max_new_tokens = 8, .stop_at_eos = false}).tokens;
    CHECK(q.generate({prompt}, {.max_new_tokens = 8, .stop_at_eos = false}).tokens == greedy);
    // Two tensor-parallel ranks quantize their own parts: the same blocks.
    runtime::decoder<F> tp2(q8_dir, {.type = dtype::f32, .weights = models::weight_format::q8, .threads = 2, .tp = 2});
    const auto split = tp2.prompt_logits(prompt);
    for (std::size_t t = 0; t < got.size(); ++t) CHECK(rel_diff(split[t], want[t]) < 1e-4);
    CHECK(tp2.generate({prompt}, {.max_new_tokens = 8, .stop_at_eos = false}).tokens == greedy);
}

}  // namespace

TEST_CASE("q8: every family's decoder with q8 weights computes the f32 model on the dequantized weights") {
    check_q8_family<models::gpt2_family>("gpt2-tiny-b", {{"n_embd", 64}, {"n_head", 4}, {"n_inner", 160}, {"vocab_size", 96}});
    check_q8_family<models::opt_family>("opt-tiny-post", {{"hidden_size", 64}, {"ffn_dim", 96}, {"word_embed_proj_dim", 32}, {"vocab_size", 90}});
    check_q8_family<models::gptj_family>("gptj-tiny", {{"n_embd", 64}, {"n_head", 2}, {"rotary_dim", 8}, {"vocab_size", 80}});
    // k/v projections of 2 x 16 and an ffn of 100: those stay f32 beside q8 ones.
    check_q8_family<models::llama_family>("llama-tiny-gqa", {{"hidden_size", 64}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                                                             {"head_dim", 16}, {"intermediate_size", 100}, {"vocab_size", 70}});
}

TEST_CASE("q8: the demo model's perplexity on held-out text is within 1% of f32's") {
    // tests/data/heldout/kjv-revelation-21-22.txt: the last two chapters of the
    // King James Bible, inside the final 2% of the text that training held out.
    const auto demo = data / ".." / ".." / "models" / "demo-gpt2";
    std::ifstream in(data / "heldout" / "kjv-revelation-21-22.txt");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto ids = io::tokenizer::from_folder(demo).encode(text);
    REQUIRE(ids.size() > 1000);
    auto perplexity = [&](models::weight_format w) {
        runtime::decoder<models::gpt2_family> lm(demo, {.type = dtype::f32, .weights = w, .threads = 2, .buckets = {256}});
        double nll = 0;
        std::int64_t count = 0;
        for (std::size_t at = 0; at + 1 < ids.size(); at += 255) {  // windows of 256 tokens, overlapping by one
            const std::vector<std::int32_t> window(ids.begin() + static_cast<std::ptrdiff_t>(at),
                                                   ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), at + 256)));
            const auto rows = lm.prompt_logits(window);
            for (std::size_t t = 0; t + 1 < window.size(); ++t) {
                const auto& r = rows[t];
                const double top = *std::max_element(r.begin(), r.end());
                double sum = 0;
                for (const float v : r) sum += std::exp(v - top);
                nll += top + std::log(sum) - r[static_cast<std::size_t>(window[t + 1])];
                ++count;
            }
        }
        return std::exp(nll / static_cast<double>(count));
    };
    const auto f32 = perplexity(models::weight_format::plain);
    const auto q8 = perplexity(models::weight_format::q8);
    INFO("perplexity: f32 " << f32 << ", q8 " << q8);
    CHECK(f32 < 150);  // the model knows the style (a uniform guess over its 4000 tokens: 4000)
    CHECK(std::fabs(q8 / f32 - 1) < 0.01);
}
