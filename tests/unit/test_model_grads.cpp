// The causal-LM loss and the gradient of every parameter of each golden
// checkpoint, against Hugging Face transformers on PyTorch (loss.backward() on the
// same right-padded batch, dropout off): tests/data/<model>/gradients, made by
// scripts/reference/make_gradient_golden.py. On the CPU backend at TP 1, 2 and 4,
// each rank's gradient is the shard of the whole model's, like its weight.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <scribe/cpu.hpp>
#include <scribe/models/registry.hpp>
#include <scribe/parallel/weights.hpp>
#include <scribe/runtime/weight_files.hpp>
#include <scribe/train/causal_lm.hpp>

#include "golden.hpp"

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_model_grads {

using namespace scribe;
using scribe_test::data;

namespace {

struct batch {
    std::vector<std::int32_t> ids, lengths;
    std::int64_t rows = 0, seq = 0;
    double loss = 0;
};

batch read_batch(const std::filesystem::path& file) {
    std::ifstream f(file);
    REQUIRE(f);
    const auto j = nlohmann::json::parse(f);
    batch b;
    b.rows = static_cast<std::int64_t>(j["ids"].size());
    b.seq = static_cast<std::int64_t>(j["ids"][0].size());
    for (const auto& row : j["ids"])
        for (const auto& id : row) b.ids.push_back(id.get<std::int32_t>());
    for (const auto& n : j["lengths"]) b.lengths.push_back(n.get<std::int32_t>());
    b.loss = std::stod(j["loss"].get<std::string>());
    return b;
}

// The loss and every weight's gradient of `model` at TP `tp` (ranks as replicas
// of one executor), compared with PyTorch's.
template <class Family>
void check_model(const std::string& model, std::int64_t tp) {
    INFO(model << " at TP " << tp);
    const auto dir = data / model;
    const auto b = read_batch(dir / "gradients" / "loss.json");
    const auto c = models::load_config<typename Family::config>(dir / "config.json");
    std::vector<int> ranks(static_cast<std::size_t>(tp));
    for (int r = 0; r < tp; ++r) ranks[static_cast<std::size_t>(r)] = r;
    const runtime::weight_files<Family> weights(dir, c, tp, ranks);
    const runtime::weight_files<Family> golden(dir / "gradients", c, tp, ranks);

    graph g(model + "_train");
    const auto loss = train::causal_lm_loss<Family, f32>(g, c, {.batch = b.rows, .seq = b.seq, .tp = tp});
    const auto& specs = weights.specs();
    std::vector<node_id> wrt, varying;
    for (const auto& s : specs) {
        wrt.push_back(*g.find_parameter(s.name));
        if (!s.split.empty() && tp > 1) varying.push_back(wrt.back());
    }
    auto outs = gradients(g, loss.id(), wrt, spmd{.varying = varying, .replica_groups = {}});
    outs.insert(outs.begin(), loss.id());
    g.set_outputs(outs);

    const shape rows_seq{{"batch", b.rows}, {"seq", b.seq}}, rows{{"batch", b.rows}};
    auto ids = cpu::array::borrow(dtype::s32, rows_seq, b.ids.data(), b.ids.size() * 4);
    auto lengths = cpu::array::borrow(dtype::s32, rows, b.lengths.data(), b.lengths.size() * 4);
    std::vector<std::vector<cpu::array>> held(ranks.size());
    std::vector<std::vector<cpu::input>> in(ranks.size());
    for (int r : ranks) {
        auto& mine = held[static_cast<std::size_t>(r)];
        mine.reserve(specs.size());
        for (std::size_t i = 0; i < specs.size(); ++i) {
            mine.push_back(weights.array(static_cast<std::size_t>(r), i, dtype::f32));
            in[static_cast<std::size_t>(r)].push_back({specs[i].name, mine.back()});
        }
        in[static_cast<std::size_t>(r)].push_back({"ids", ids});
        in[static_cast<std::size_t>(r)].push_back({"lengths", lengths});
    }
    const auto got = cpu::executor(g, {.threads = 1}).run_replicas(in);
    for (int r : ranks) {
        const auto& mine = got[static_cast<std::size_t>(r)];
        CHECK(mine[0].template values<float>()[0] == Approx(b.loss).epsilon(1e-5));
        for (std::size_t i = 0; i < specs.size(); ++i) {
            INFO("rank " << r << ", gradient of " << specs[i].name);
            const auto want = golden.array(static_cast<std::size_t>(r), i, dtype::f32);
            const auto a = mine[i + 1].template values<float>();
            const auto e = want.template values<float>();
            REQUIRE(a.size() == e.size());
            double worst = 0, scale = 0;
            for (std::size_t k = 0; k < a.size(); ++k) {
                worst = std::max(worst, std::abs(static_cast<double>(a[k]) - e[k]));
                scale = std::max(scale, std::abs(static_cast<double>(e[k])));
            }
            // Relative to the tensor's largest element; the key projection's bias has a
            // gradient that is zero in exact arithmetic (a softmax does not see a shift
            // of all its scores), which both sides compute as rounding noise near 1e-8.
            CHECK(worst <= 1e-4 * scale + 1e-6);
        }
    }
}

template <class Family>
void check_all_degrees(const std::string& model) {
    for (std::int64_t tp : {1, 2, 4}) check_model<Family>(model, tp);
}

}  // namespace

TEST_CASE("gpt2: the causal-LM loss and every gradient equal PyTorch's, TP 1/2/4") {
    check_all_degrees<models::gpt2_family>("gpt2-tiny-a");
    check_all_degrees<models::gpt2_family>("gpt2-tiny-b");
}

TEST_CASE("opt: the causal-LM loss and every gradient equal PyTorch's, pre- and post-LN, TP 1/2/4") {
    check_all_degrees<models::opt_family>("opt-tiny");
    check_all_degrees<models::opt_family>("opt-tiny-post");
}

TEST_CASE("gptj: the causal-LM loss and every gradient equal PyTorch's, TP 1/2/4") {
    check_all_degrees<models::gptj_family>("gptj-tiny");
}

TEST_CASE("llama and mistral: the causal-LM loss and every gradient equal PyTorch's, TP 1/2/4") {
    check_all_degrees<models::llama_family>("llama-tiny-gqa");
    check_all_degrees<models::llama_family>("llama-tiny-mqa");
    check_all_degrees<models::llama_family>("mistral-tiny");
}

}  // namespace test_model_grads
