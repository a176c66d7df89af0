// Training steps against PyTorch: 20 optimizer steps (AdamW with a cosine
// schedule after warmup, clipping, weight decay and 2 micro-batches per step; SGD
// with momentum and a linear schedule) from each golden checkpoint's weights, on
// the batches in tests/data/<model>/training/<optimizer>/steps.json, made with
// torch.optim by scripts/reference/make_training_golden.py. Every step's loss,
// gradient norm and rate, and every weight after the last step, are compared.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>
#include <scribe/cpu.hpp>
#include <scribe/models/registry.hpp>
#include <scribe/runtime/trainer.hpp>
#include <scribe/runtime/weight_files.hpp>
#include <scribe/train/causal_lm.hpp>

#include "golden.hpp"

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_train {

using namespace scribe;
using scribe_test::data;

namespace {

SCRIBE_DIM(rows);
SCRIBE_DIM(in);
SCRIBE_DIM(out);

train::update_options options_of(const nlohmann::json& o) {
    train::update_options u;
    if (o["optimizer"] == "adamw")
        u.method = train::adamw{.beta1 = o["beta1"].get<double>(), .beta2 = o["beta2"].get<double>(), .eps = o["eps"].get<double>(),
                                .weight_decay = o["weight_decay"].get<double>()};
    else
        u.method = train::sgd{.momentum = o["momentum"].get<double>(), .dampening = o["dampening"].get<double>(),
                              .weight_decay = o["weight_decay"].get<double>(), .nesterov = o["nesterov"].get<bool>()};
    u.lr = {.kind = train::schedule::parse(o["schedule"].get<std::string>()), .lr = o["lr"].get<double>(),
            .warmup = o["warmup"].get<std::int64_t>(), .total = o["total"].get<std::int64_t>(),
            .min_lr = o.value("min_lr", 0.0)};
    u.clip = o["clip"].get<double>();
    u.accumulate = o["accumulate"].get<std::int64_t>();
    return u;
}

struct micro_batch {
    std::vector<std::int32_t> ids, lengths;
    std::int64_t rows = 0, seq = 0;
};

micro_batch read_micro(const nlohmann::json& j) {
    micro_batch b;
    b.rows = static_cast<std::int64_t>(j["ids"].size());
    b.seq = static_cast<std::int64_t>(j["ids"][0].size());
    for (const auto& row : j["ids"])
        for (const auto& id : row) b.ids.push_back(id.get<std::int32_t>());
    for (const auto& n : j["lengths"]) b.lengths.push_back(n.get<std::int32_t>());
    return b;
}

// The elements of a weight that belong to an attention key projection's bias:
// [begin, end) of its stored elements (none: begin == end). Their gradient is zero
// in exact arithmetic (a softmax does not see a shift of all its scores), so both
// sides compute rounding noise near 1e-8 there, which Adam normalises into steps
// of the learning rate's size in random directions: torch's own float32 and
// float64 runs end 1e-2 apart there (scripts/reference/make_training_golden.py).
std::pair<std::size_t, std::size_t> key_bias(const models::weight_spec& s) {
    const auto n = static_cast<std::size_t>(element_count(s.dims));
    if (s.name.ends_with("attn.c_attn.bias")) return {n / 3, 2 * n / 3};  // GPT-2's [q | k | v]
    if (s.name.ends_with("k_proj.bias")) return {0, n};                  // OPT, LLaMA with attention_bias
    return {0, 0};
}

template <class Family>
void check_run(const std::string& model, const std::string& run) {
    INFO(model << ", " << run);
    const auto dir = data / model;
    const auto golden_dir = dir / "training" / run;
    std::ifstream f(golden_dir / "steps.json");
    REQUIRE(f);
    const auto j = nlohmann::json::parse(f);
    auto o = options_of(j["options"]);
    const auto c = models::load_config<typename Family::config>(dir / "config.json");
    const runtime::weight_files<Family> weights(dir, c, 1, {0});
    const runtime::weight_files<Family> golden(golden_dir, c, 1, {0});
    const auto& specs = weights.specs();
    auto w = weights.arrays(0, dtype::f32);
    o.decays = train::decays_matrices(specs);  // as the reference groups them

    const auto first = read_micro(j["batches"][0][0]);
    runtime::trainer t(
        [&](graph& g) {
            return train::causal_lm_loss<Family, f32>(g, c, {.batch = first.rows, .seq = first.seq}).id();
        },
        std::move(w), {.update = o, .threads = 1});

    REQUIRE(j["steps"].size() == 20);
    for (std::size_t s = 0; s < j["steps"].size(); ++s) {
        INFO("step " << s);
        std::vector<micro_batch> held;
        for (const auto& m : j["batches"][s]) held.push_back(read_micro(m));
        std::vector<runtime::trainer::batch> micro;
        for (const auto& b : held)
            micro.push_back({{"ids", cpu::array::borrow(dtype::s32, {{"batch", b.rows}, {"seq", b.seq}}, b.ids.data(), b.ids.size() * 4)},
                             {"lengths", cpu::array::borrow(dtype::s32, {{"batch", b.rows}}, b.lengths.data(), b.lengths.size() * 4)}});
        const auto r = t.step(micro);
        const auto& want = j["steps"][s];
        CHECK(r.step == static_cast<std::int64_t>(s + 1));
        CHECK(r.lr == Approx(std::stod(want["lr"].get<std::string>())).epsilon(1e-12).margin(1e-15));
        // The weights drift apart by rounding over the steps (each side's sums
        // in its own order), so the later losses agree a little less closely.
        CHECK(r.loss == Approx(std::stod(want["loss"].get<std::string>())).epsilon(2e-5));
        CHECK(r.grad_norm == Approx(std::stod(want["grad_norm"].get<std::string>())).epsilon(1e-4));
    }
    // Adam moves an element by at most lr (1 - beta1) / sqrt(1 - beta2) a step.
    double furthest = 0;
    for (const auto& s : j["steps"]) furthest += std::stod(s["lr"].get<std::string>()) * 0.1 / std::sqrt(0.001);
    const bool adam = std::holds_alternative<train::adamw>(o.method);
    const auto& got = t.weights();
    double worst_relative = 0;
    for (std::size_t i = 0; i < specs.size(); ++i) {
        INFO("weight " << specs[i].name);
        const auto want = golden.array(0, i, dtype::f32);
        REQUIRE(got[i].first == specs[i].name);
        const auto a = got[i].second.template values<float>();
        const auto e = want.template values<float>();
        REQUIRE(a.size() == e.size());
        const auto [kb, ke] = adam ? key_bias(specs[i]) : std::pair<std::size_t, std::size_t>{0, 0};
        double scale = 0, diff = 0;
        for (std::size_t k = 0; k < a.size(); ++k) scale = std::max(scale, std::abs(static_cast<double>(e[k])));
        for (std::size_t k = 0; k < a.size(); ++k) {
            const auto d = std::abs(static_cast<double>(a[k]) - e[k]);
            if (k >= kb && k < ke) CHECK(d <= 2 * furthest);  // noise on both sides (above)
            else diff = std::max(diff, d);
        }
        worst_relative = std::max(worst_relative, diff / scale);
        CHECK(diff <= 2e-5 * scale + 1e-7);
    }
    UNSCOPED_INFO(model << " " << run << ": largest relative weight difference after 20 steps " << worst_relative);
}

template <class Family>
void check_both(const std::string& model) {
    check_run<Family>(model, "adamw");
    check_run<Family>(model, "sgd");
}

}  // namespace

TEST_CASE("training: 20 AdamW and SGD steps of GPT-2 equal torch.optim's") {
    check_both<models::gpt2_family>("gpt2-tiny-a");
    check_both<models::gpt2_family>("gpt2-tiny-b");
}

TEST_CASE("training: 20 AdamW and SGD steps of OPT equal torch.optim's, pre- and post-LN") {
    check_both<models::opt_family>("opt-tiny");
    check_both<models::opt_family>("opt-tiny-post");
}

TEST_CASE("training: 20 AdamW and SGD steps of GPT-J equal torch.optim's") { check_both<models::gptj_family>("gptj-tiny"); }

TEST_CASE("training: 20 AdamW and SGD steps of LLaMA and Mistral equal torch.optim's") {
    check_both<models::llama_family>("llama-tiny-gqa");
    check_both<models::llama_family>("llama-tiny-mqa");
    check_both<models::llama_family>("mistral-tiny");
}

TEST_CASE("training: every optimizer branch equals torch.optim's on a least-squares problem") {
    // tests/data/optimizers.json: 12 steps of SGD without momentum, with dampening,
    // with Nesterov momentum (and clipping); AdamW with beta1 < 0.5 (torch's lerp
    // takes its other form there) and a clip that always clips; constant, linear
    // and cosine schedules with and without warmup, and a cosine to a least rate
    // (transformers' cosine_with_min_lr). w decays, b does not.
    std::ifstream f(data / "optimizers.json");
    REQUIRE(f);
    const auto j = nlohmann::json::parse(f);
    auto flat = [](const nlohmann::json& rows) {
        std::vector<float> v;
        for (const auto& r : rows)
            if (r.is_array())
                for (const auto& x : r) v.push_back(x.get<float>());
            else
                v.push_back(r.get<float>());
        return v;
    };
    const auto xs = flat(j["x"]), ys = flat(j["y"]), w0 = flat(j["w"]), b0 = flat(j["b"]);
    REQUIRE(j["cases"].size() == 6);
    for (const auto& [name, c] : j["cases"].items()) {
        INFO(name);
        auto o = options_of(c["options"]);
        o.decays = [](const std::string& w) { return w == "w"; };
        auto loss_of = [](graph& g) {
            g.bind(rows(6), in(4), out(3));
            auto w = g.parameter(f32[in, out], "w");
            auto b = g.parameter(f32[out], "b");
            auto x = g.parameter(f32[rows, in], "x");
            auto y = g.parameter(f32[rows, out], "y");
            auto xw = dot<in>(x, w);
            auto err = xw + broadcast_to(b, xw) - y;
            return (reduce_sum<rows, out>(err * err) / 18.0).id();
        };
        cpu::named_arrays weights;
        weights.emplace_back("w", cpu::array::borrow(dtype::f32, {{"in", 4}, {"out", 3}}, w0.data(), w0.size() * 4));
        weights.emplace_back("b", cpu::array::borrow(dtype::f32, {{"out", 3}}, b0.data(), b0.size() * 4));
        runtime::trainer t(loss_of, std::move(weights), {.update = o, .threads = 1});
        const cpu::named_arrays batch = {{"x", cpu::array::borrow(dtype::f32, {{"rows", 6}, {"in", 4}}, xs.data(), xs.size() * 4)},
                                         {"y", cpu::array::borrow(dtype::f32, {{"rows", 6}, {"out", 3}}, ys.data(), ys.size() * 4)}};
        for (std::size_t s = 0; s < c["steps"].size(); ++s) {
            INFO("step " << s);
            const auto r = t.step(batch);
            const auto& want = c["steps"][s];
            CHECK(r.lr == Approx(std::stod(want["lr"].get<std::string>())).epsilon(1e-12).margin(1e-15));
            CHECK(r.loss == Approx(std::stod(want["loss"].get<std::string>())).epsilon(1e-5));
            CHECK(r.grad_norm == Approx(std::stod(want["grad_norm"].get<std::string>())).epsilon(1e-5));
        }
        for (const auto& [wname, golden] : {std::pair{"w", flat(c["w"])}, std::pair{"b", flat(c["b"])}}) {
            const auto& got = std::ranges::find_if(t.weights(), [&](const auto& e) { return e.first == wname; })->second;
            const auto a = got.values<float>();
            REQUIRE(a.size() == golden.size());
            for (std::size_t k = 0; k < a.size(); ++k) CHECK(a[k] == Approx(golden[k]).epsilon(1e-5).margin(1e-6));
        }
    }
}

namespace {

SCRIBE_DIM(units);

// 20 SGD steps of lr 1e-4 on 4096 bf16 weights equal to 1, each with gradient
// 1 (loss = sum(w)): every update is a 40th of bf16's step below 1 (2^-8), so
// rounding to nearest loses all of them; the f32 master keeps them, and
// stochastic rounding keeps them on average. Expected values by hand: the
// master is 1 - 20e-4 = 0.998 (to f32's rounding of 20 subtractions), whose
// nearest bf16 is 0.99609375 (the midpoint with 1 is 0.998046875).
runtime::trainer small_updates(train::rounding round, bool master, std::uint64_t seed) {
    constexpr std::int64_t n = 4096;
    auto loss_of = [](graph& g) {
        g.bind(units(n));
        auto w = g.parameter(bf16[units], "w");
        return reduce_sum<units>(convert<f32>(w)).id();
    };
    std::vector<std::uint16_t> ones(n, 0x3f80);  // bf16 1.0
    cpu::array w(dtype::bf16, {{"units", n}});
    std::memcpy(w.mutable_data(), ones.data(), ones.size() * 2);
    cpu::named_arrays weights;
    weights.emplace_back("w", std::move(w));
    train::update_options o{.method = train::sgd{}, .lr = {.kind = train::schedule::decay::constant, .lr = 1e-4, .total = 20}};
    o.round = round;
    o.master_weights = master;
    o.seed = seed;
    return runtime::trainer(loss_of, std::move(weights), {.update = o, .threads = 1});
}

std::vector<float> bf16_values(const cpu::array& a) {
    std::vector<float> v;
    const auto* bits = reinterpret_cast<const std::uint16_t*>(a.data());
    for (std::int64_t k = 0; k < a.size(); ++k) v.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(bits[k]) << 16));
    return v;
}

}  // namespace

TEST_CASE("training: bf16 weights lose updates under round-to-nearest and keep them with stochastic rounding or f32 masters") {
    const cpu::named_arrays none;
    auto run = [&](runtime::trainer t) {
        for (int s = 0; s < 20; ++s) (void)t.step(none);
        return t;
    };
    SECTION("round to nearest: every update is lost") {
        const auto t = run(small_updates(train::rounding::nearest, false, 0));
        for (float v : bf16_values(t.weights()[0].second)) REQUIRE(v == 1.0f);
        REQUIRE(t.state().size() == 1);  // the step counter only
    }
    SECTION("f32 master weights: the master holds 1 - 20 lr, the model its nearest bf16") {
        const auto t = run(small_updates(train::rounding::nearest, true, 0));
        for (float v : bf16_values(t.weights()[0].second)) REQUIRE(v == 0.99609375f);
        REQUIRE(t.state().size() == 2);
        REQUIRE(t.state()[1].first == "optimizer.master.w");
        for (float m : t.state()[1].second.values<float>()) REQUIRE(m == Approx(0.998).margin(1e-6));
    }
    SECTION("stochastic rounding: the weights' mean follows 1 - 20 lr, and the seed picks the bits") {
        const auto t = run(small_updates(train::rounding::stochastic, false, 5));
        const auto v = bf16_values(t.weights()[0].second);
        double mean = 0;
        for (float x : v) {
            // Every update goes down: each weight walks down bf16's grid, by a
            // whole step (2^-8) at a time, at random.
            REQUIRE(x <= 1.0f);
            REQUIRE(x >= 1.0f - 8.0f / 256);
            mean += x / static_cast<double>(v.size());
        }
        // Each element ends a step or so from 0.998 (mostly at 1 or 1 - 2^-8,
        // each about half the time): the mean's standard deviation is about
        // 2^-8 / 2 / 64 = 3e-5.
        CHECK(mean == Approx(0.998).margin(2e-4));
        const auto again = run(small_updates(train::rounding::stochastic, false, 5));
        CHECK(bf16_values(again.weights()[0].second) == v);
        const auto other = run(small_updates(train::rounding::stochastic, false, 6));
        CHECK(bf16_values(other.weights()[0].second) != v);
    }
}

TEST_CASE("graph autocast: dots of f32 operands run in bf16, forward and backward, as torch.autocast's") {
    // x = 1 + 2^-10 (bf16 rounds it to 1), w = 1: a product over 4 elements is
    // 4 + 2^-8 in f32 and exactly 4 in bf16; the gradient of the sum of products
    // with respect to w is 3 rows of x: 3 + 3 * 2^-10 in f32, 3 in bf16.
    for (const bool cast : {false, true}) {
        INFO("autocast " << cast);
        graph g("autocast");
        if (cast) g.set_dot_autocast(dtype::bf16);
        g.bind(rows(3), in(4), out(2));
        auto x = g.parameter(f32[rows, in], "x");
        auto w = g.parameter(f32[in, out], "w");
        auto y = dot<in>(x, w);
        auto loss = reduce_sum<rows, out>(y);
        const auto grads = gradients(g, loss.id(), {w.id()});
        g.set_outputs({y.id(), grads[0]});
        for (const auto& n : g.nodes())
            if (n.kind == op::dot)
                for (auto a : n.operands) CHECK(g[a].type == (cast ? dtype::bf16 : dtype::f32));
        CHECK(g[y.id()].type == dtype::f32);
        CHECK(g[grads[0]].type == dtype::f32);
        const std::vector<float> xs(12, 1.0f + 1.0f / 1024), ws(8, 1.0f);
        cpu::executor e(g, {.threads = 1});
        const auto out = e({{"x", cpu::array::borrow(dtype::f32, {{"rows", 3}, {"in", 4}}, xs.data(), 48)},
                                {"w", cpu::array::borrow(dtype::f32, {{"in", 4}, {"out", 2}}, ws.data(), 32)}});
        for (float v : out[0].template values<float>()) CHECK(v == (cast ? 4.0f : 4.0f + 1.0f / 256));
        for (float v : out[1].template values<float>()) CHECK(v == (cast ? 3.0f : 3.0f + 3.0f / 1024));
    }
}

}  // namespace test_train
