// Tensor-parallel training, and the data- x tensor-parallel mesh, as `scribe
// train --tp` runs them (runtime::train_model with ranks as threads): TP 2 and
// 4, and DP 2 x TP 2, against TP 1 on the same global batches, step by step and
// in the checkpoints, which are whole whatever the degrees; a checkpoint
// written at one degree resumes at another as if the run had not stopped.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <scribe/io/safetensors.hpp>
#include <scribe/models/registry.hpp>
#include <scribe/runtime/training.hpp>

#include "golden.hpp"

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_parallel_training {

using namespace scribe;
using scribe_test::data;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t steps = 6, seq = 12;

struct mesh_run {
    std::vector<runtime::step_report> steps;
    fs::path out;
};

// A run of `steps` steps from `model` (a folder, or a config to draw the weights from; dropout off, so that every degree
// computes the same function), a checkpoint every 3 steps.
template <class Family>
mesh_run train(const runtime::model_source& model, const train::token_blocks& blocks, int dp, int tp, const fs::path& out,
               train::precision precision = train::precision::f32, const fs::path& resume = {}) {
    runtime::training_options o;
    o.batch = 4;
    o.seq = seq;
    o.steps = steps;
    o.update.method = train::adamw{.weight_decay = 0.1};
    o.update.lr = {.kind = train::schedule::decay::cosine, .lr = 3e-3, .warmup = 2};
    o.update.clip = 1.0;
    o.threads = static_cast<unsigned>(dp * tp);  // one each
    o.dp = dp;
    o.tp = tp;
    o.dropout = false;
    o.save_every = 3;
    o.precision = precision;
    o.out = out;
    o.resume = resume;
    mesh_run r{.steps = {}, .out = out};
    o.on_step = [&](const runtime::step_report& s) { r.steps.push_back(s); };
    fs::remove_all(out);
    (void)runtime::train_model<Family>(model, blocks, o);
    return r;
}

// Every tensor of checkpoint a equals b's within `tolerance` of the tensor's
// largest value (both written whole, f32). GPT-2's attention bias holds the key
// projection's, whose gradient is zero in exact arithmetic: Adam turns rounding
// noise into steps of up to lr (1 - beta1) / sqrt(1 - beta2) in any direction
// (test_train.cpp), so it and its moments are held to that only.
void check_same_checkpoint(const fs::path& a, const fs::path& b, double tolerance) {
    for (const char* file : {"model.safetensors", "optimizer.safetensors"}) {
        const io::safetensors x(a / file), y(b / file);
        REQUIRE(x.tensors().size() == y.tensors().size());
        for (const auto& e : x.tensors()) {
            INFO(file << ": " << e.name);
            REQUIRE(y.contains(e.name));
            const auto& f = y.entry(e.name);
            REQUIRE(f.shape == e.shape);
            REQUIRE(f.type == e.type);
            if (e.type != dtype::f32) {
                CHECK(std::memcmp(x.bytes(e.name).data(), y.bytes(e.name).data(), x.bytes(e.name).size()) == 0);
                continue;
            }
            const auto n = static_cast<std::size_t>(e.elements());
            std::vector<float> u(n), v(n);
            std::memcpy(u.data(), x.bytes(e.name).data(), 4 * n);
            std::memcpy(v.data(), y.bytes(e.name).data(), 4 * n);
            double scale = 0, diff = 0;
            for (std::size_t k = 0; k < n; ++k) {
                scale = std::max(scale, std::abs(static_cast<double>(u[k])));
                diff = std::max(diff, std::abs(static_cast<double>(u[k]) - v[k]));
            }
            if (e.name.find("c_attn.bias") != std::string::npos) CHECK(diff <= 2 * steps * 3e-3 * 0.1 / std::sqrt(0.001));
            else CHECK(diff <= tolerance * scale + 1e-7);
        }
    }
}

void check_same_steps(const std::vector<runtime::step_report>& got, const std::vector<runtime::step_report>& want, std::int64_t from = 0) {
    REQUIRE(got.size() == static_cast<std::size_t>(steps - from));
    for (std::size_t s = 0; s < got.size(); ++s) {
        INFO("step " << got[s].step);
        const auto& w = want[s + static_cast<std::size_t>(from)];
        CHECK(got[s].step == w.step);
        CHECK(got[s].lr == w.lr);
        CHECK(got[s].loss == Approx(w.loss).epsilon(2e-5));
        CHECK(got[s].grad_norm == Approx(w.grad_norm).epsilon(1e-4));
    }
}

template <class Family>
void check_tensor_parallel_training(const std::string& model) {
    const auto dir = data / model;
    const auto c = models::load_config<typename Family::config>(dir / "config.json");
    std::mt19937 rng(99);
    std::uniform_int_distribution<std::int32_t> token(0, static_cast<std::int32_t>(c.vocab_size - 1));
    std::vector<std::int32_t> tokens(static_cast<std::size_t>(30 * seq));
    for (auto& t : tokens) t = token(rng);
    const train::token_blocks blocks(tokens, seq, 0.1, "random tokens");
    const auto root = fs::temp_directory_path() / ("scribe-tp-train-" + model);
    const runtime::model_source folder{.dir = dir};
    const auto one = train<Family>(folder, blocks, 1, 1, root / "tp1");
    REQUIRE(one.steps.size() == static_cast<std::size_t>(steps));
    for (const auto& [dp, tp] : {std::pair{1, 2}, std::pair{1, 4}, std::pair{2, 2}}) {
        INFO(model << ": DP " << dp << " x TP " << tp);
        const auto run = train<Family>(folder, blocks, dp, tp, root / ("dp" + std::to_string(dp) + "-tp" + std::to_string(tp)));
        check_same_steps(run.steps, one.steps);
        for (const char* ck : {"checkpoint-3", "checkpoint-6"}) {
            INFO(ck);
            check_same_checkpoint(run.out / ck, one.out / ck, 1e-4);
        }
    }
    // A checkpoint of TP 2 resumes at TP 1, and one of TP 1 at DP 2 x TP 2, each
    // continuing the uninterrupted run's steps.
    const auto at_one = train<Family>(folder, blocks, 1, 1, root / "resumed-tp1", train::precision::f32, root / "dp1-tp2" / "checkpoint-3");
    check_same_steps(at_one.steps, one.steps, 3);
    const auto at_mesh = train<Family>(folder, blocks, 2, 2, root / "resumed-mesh", train::precision::f32, root / "tp1" / "checkpoint-3");
    check_same_steps(at_mesh.steps, one.steps, 3);
    check_same_checkpoint(at_mesh.out / "checkpoint-6", one.out / "checkpoint-6", 1e-4);
    // A new model drawn from the config: each rank cuts its shards of the same
    // draw (the vocabulary's padding rows zero), so TP 4 trains as TP 1 too.
    const runtime::model_source drawn{.config = models::read_config_json(dir / "config.json"), .tokenizer = dir};
    const auto new_one = train<Family>(drawn, blocks, 1, 1, root / "new-tp1");
    const auto new_four = train<Family>(drawn, blocks, 1, 4, root / "new-tp4");
    check_same_steps(new_four.steps, new_one.steps);
    check_same_checkpoint(new_four.out / "checkpoint-6", new_one.out / "checkpoint-6", 1e-4);
    fs::remove_all(root);
}

}  // namespace

TEST_CASE("parallel training: GPT-2 at TP 2, TP 4 and DP 2 x TP 2 trains as TP 1 and resumes at another degree") {
    check_tensor_parallel_training<models::gpt2_family>("gpt2-tiny-a");
}

TEST_CASE("parallel training: LLaMA (GQA; TP 4 replicates the KV heads) at TP 2, TP 4 and DP 2 x TP 2 trains as TP 1") {
    check_tensor_parallel_training<models::llama_family>("llama-tiny-gqa");
}

}  // namespace test_parallel_training
