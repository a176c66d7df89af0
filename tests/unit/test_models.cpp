// Models against Hugging Face: the tiny GPT-2 checkpoints in tests/data were made by
// scripts/reference/make_golden.py with transformers, which also recorded the
// logits of fixed prompts and their greedy continuations (golden.json). The CPU
// backend must give the same logits (within float tolerance) and the same tokens.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <functional>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <scribe/models/gpt2.hpp>
#include <scribe/runtime/decoder.hpp>

#include "golden.hpp"

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_models {

using namespace scribe;
namespace fs = std::filesystem;

using scribe_test::data;
using scribe_test::golden;
using scribe_test::max_diff;

TEST_CASE("gpt2: logits and greedy tokens equal Hugging Face's (f32, CPU)") {
    for (const std::string model : {"gpt2-tiny-a", "gpt2-tiny-b"}) {
        INFO(model);
        runtime::decoder<models::gpt2_family> lm(data / model, {.type = dtype::f32, .threads = 1});
        const auto cases = golden(model);
        for (const auto& c : cases) {
            INFO("prompt of " << c.ids.size() << " tokens");
            const auto rows = lm.prompt_logits(c.ids);
            REQUIRE(rows.size() == c.logits.size());
            for (std::size_t t = 0; t < rows.size(); ++t) CHECK(max_diff(rows[t], c.logits[t]) < 1e-4);
            const auto out = lm.generate({c.ids}, {.max_new_tokens = 12, .stop_at_eos = false});
            CHECK(out.tokens[0] == c.greedy);
        }
        scribe_test::check_last_logits(lm, cases);
        // All prompts at once: right-padded into one bucket, each at its own position.
        std::vector<std::vector<std::int32_t>> prompts;
        for (const auto& c : cases) prompts.push_back(c.ids);
        const auto batch = lm.generate(prompts, {.max_new_tokens = 12, .stop_at_eos = false});
        for (std::size_t b = 0; b < cases.size(); ++b) CHECK(batch.tokens[b] == cases[b].greedy);
    }
}

namespace {

// A copy of a tiny checkpoint folder in a scratch directory, with the changes a
// test makes to its tensors (edit receives them before they are written).
fs::path broken_copy(const std::string& name, const std::function<void(std::vector<io::tensor_to_write>&,
                                                                        std::vector<std::vector<unsigned char>>&)>& edit = {}) {
    const auto dir = fs::temp_directory_path() / ("scribe_test_models_" + std::to_string(::getpid())) / name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const auto& f : fs::directory_iterator(data / "gpt2-tiny-a"))
        if (f.is_regular_file() && f.path().filename() != "model.safetensors") fs::copy_file(f.path(), dir / f.path().filename());
    const io::safetensors src(data / "gpt2-tiny-a" / "model.safetensors");
    std::vector<io::tensor_to_write> ts;
    std::vector<std::vector<unsigned char>> storage;
    storage.reserve(src.tensors().size() + 4);
    for (const auto& e : src.tensors()) {
        const auto b = src.bytes(e.name);
        storage.emplace_back(b.begin(), b.end());
        ts.push_back({e.name, e.type, e.shape, storage.back()});
    }
    if (edit) edit(ts, storage);
    io::write_safetensors(dir / "model.safetensors", ts);
    return dir;
}

void set_config(const fs::path& dir, const std::string& key, const nlohmann::json& value) {
    nlohmann::json j;
    std::ifstream(dir / "config.json") >> j;
    j[key] = value;
    std::ofstream(dir / "config.json") << j.dump(2);
}

std::string load_error(const fs::path& dir) {
    try {
        runtime::decoder<models::gpt2_family> lm(dir, {.type = dtype::f32, .threads = 1});
    } catch (const scribe::error& e) {
        return e.what();
    }
    return "(loaded without an error)";
}

}  // namespace

TEST_CASE("gpt2: a bad checkpoint or config is refused, naming the file and the tensor") {
    using Catch::Matchers::Contains;
    {
        auto dir = broken_copy("missing", [](auto& ts, auto&) {
            std::erase_if(ts, [](const auto& t) { return t.name == "transformer.h.1.mlp.c_fc.bias"; });
        });
        const auto e = load_error(dir);
        CHECK_THAT(e, Contains("model.safetensors") && Contains("`h.1.mlp.c_fc.bias` is missing"));
    }
    {
        auto dir = broken_copy("extra", [](auto& ts, auto&) {
            auto t = ts.front();
            t.name = "transformer.h.2.ln_1.weight";
            ts.push_back(t);
        });
        CHECK_THAT(load_error(dir), Contains("unexpected tensor `transformer.h.2.ln_1.weight`"));
    }
    {
        auto dir = broken_copy("int_weight", [](auto& ts, auto&) {
            for (auto& t : ts)
                if (t.name == "transformer.ln_f.bias") t.type = dtype::s32;  // same bytes, wrong dtype
        });
        CHECK_THAT(load_error(dir), Contains("`transformer.ln_f.bias` is s32") && Contains("F32, F16 or BF16"));
    }
    {
        auto dir = broken_copy("shape");
        set_config(dir, "n_inner", 100);
        CHECK_THAT(load_error(dir), Contains("`transformer.h.0.mlp.c_fc.weight` is [36, 144] but config.json needs [36, 100]"));
    }
    {
        auto dir = broken_copy("heads");
        set_config(dir, "n_head", 5);
        CHECK_THAT(load_error(dir), Contains("config.json") && Contains("n_embd 36 is not divisible by n_head 5"));
    }
    {
        auto dir = broken_copy("activation");
        set_config(dir, "activation_function", "mish");
        CHECK_THAT(load_error(dir), Contains("activation_function \"mish\" is not supported"));
    }
    {
        auto dir = broken_copy("vocab");
        set_config(dir, "vocab_size", -3);
        CHECK_THAT(load_error(dir), Contains("`vocab_size` must be a positive integer below 2^31, got -3"));
    }
    {
        auto dir = broken_copy("not_json");
        std::ofstream(dir / "config.json") << "{\"n_embd\": 36,";
        CHECK_THAT(load_error(dir), Contains("config.json: not valid JSON"));
    }
    {
        auto dir = broken_copy("truncated");
        const auto size = fs::file_size(dir / "model.safetensors");
        fs::resize_file(dir / "model.safetensors", size - 100);
        CHECK_THAT(load_error(dir), Contains("model.safetensors"));
    }
}

TEST_CASE("gpt2: prompts that do not fit are refused with what to do") {
    using Catch::Matchers::Contains;
    runtime::decoder<models::gpt2_family> lm(data / "gpt2-tiny-a", {.type = dtype::f32, .threads = 1, .buckets = {8, 16}});
    auto fails = [&](const std::vector<std::vector<std::int32_t>>& prompts, std::int64_t n) -> std::string {
        try {
            (void)lm.generate(prompts, {.max_new_tokens = n});
        } catch (const scribe::error& e) {
            return e.what();
        }
        return "(no error)";
    };
    CHECK_THAT(fails({std::vector<std::int32_t>(40, 5)}, 4), Contains("prompt of 40 tokens is longer than the largest prefill bucket") &&
                                                               Contains("buckets: 8, 16)"));
    CHECK_THAT(fails({std::vector<std::int32_t>(70, 5)}, 4), Contains("70 tokens but the model has 64 positions"));
    try {
        runtime::decoder<models::gpt2_family> bad(data / "gpt2-tiny-a", {.type = dtype::f32, .threads = 1, .buckets = {8, 100}});
        FAIL("a bucket past the positions was accepted");
    } catch (const scribe::error& e) {
        CHECK_THAT(std::string(e.what()), Contains("bucket 100 must be between 1 and the model's 64 positions"));
    }
    CHECK_THAT(fails({std::vector<std::int32_t>(12, 5)}, 60), Contains("ask for at most 52 new tokens"));
    CHECK_THAT(fails({{1, 2, 301}}, 4), Contains("token 301, outside the vocabulary of 301"));
    CHECK_THAT(fails({{1, 2}, {}}, 4), Contains("prompt 1 is empty"));
    CHECK_THAT(fails({{1, 2}}, 0), Contains("max_new_tokens must be at least 1"));
}

TEST_CASE("gpt2: weights converted to f16 and bf16 on load stay close to Hugging Face's logits") {
    const auto cases = golden("gpt2-tiny-a");
    for (auto [type, tolerance] : {std::pair{dtype::f16, 0.05}, std::pair{dtype::bf16, 0.5}}) {
        INFO(name(type));
        runtime::decoder<models::gpt2_family> lm(data / "gpt2-tiny-a", {.type = type, .threads = 1});
        CHECK(lm.converted_bytes() == lm.weight_bytes());  // every weight converted once, at load
        for (const auto& c : cases) {
            const auto rows = lm.prompt_logits(c.ids);
            for (std::size_t t = 0; t < rows.size(); ++t) CHECK(max_diff(rows[t], c.logits[t]) < tolerance);
        }
        scribe_test::check_last_logits(lm, cases, tolerance);
    }
}

TEST_CASE("sampling: argmax by vectors is the first of the largest logits, ties, signed zeros, infinities and NaN included") {
    auto first_largest = [](const std::vector<float>& row) {  // value by value, as the definition reads
        std::size_t best = 0;
        for (std::size_t i = 1; i < row.size(); ++i)
            if (row[i] > row[best]) best = i;
        return static_cast<std::int32_t>(best);
    };
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> small(-3, 3);
    for (const std::size_t n : {1u, 7u, 16u, 17u, 33u, 100u, 50257u})
        for (int trial = 0; trial < 48; ++trial) {
            // Few distinct values (many ties), a maximum planted late, in the tail or
            // not at all; infinities; a NaN (walked value by value).
            std::vector<float> row(n);
            for (auto& x : row) x = static_cast<float>(small(rng)) * 0.5f;
            if (trial % 6 == 1) row[n - 1] = 9.0f;
            if (trial % 6 == 2) row[n / 2] = 9.0f, row[n - 1] = 9.0f;
            if (trial % 6 == 3) std::fill(row.begin(), row.end(), trial % 12 == 3 ? -0.0f : 0.0f), row[n - 1] = 0.0f;
            if (trial % 6 == 4) row[n - 1] = std::numeric_limits<float>::infinity(), row[0] = -std::numeric_limits<float>::infinity();
            if (trial % 6 == 5) row[n / 3] = std::numeric_limits<float>::quiet_NaN();
            INFO(n << " logits, trial " << trial);
            CHECK(runtime::argmax(row) == first_largest(row));
        }
    std::mt19937_64 draws(1);
    CHECK_THROWS_WITH(runtime::sample(std::span<const float>(), runtime::sampling{}, draws), Catch::Contains("empty row"));
}

TEST_CASE("sampling: greedy, temperature, top-k, top-p, and a seed that repeats") {
    using runtime::sampling;
    const std::vector<float> logits = {1.0f, 3.0f, 0.5f, 3.0f, 2.0f, -1.0f};
    std::mt19937_64 rng(1);
    CHECK(runtime::sample(logits, sampling{}, rng) == 1);  // greedy: the first of equal maxima
    CHECK(runtime::sample(logits, {.temperature = 1.0, .top_k = 1}, rng) == 1);

    // Frequencies follow softmax(logits / T) over the kept tokens.
    auto histogram = [&](const sampling& s, int n) {
        std::mt19937_64 r(s.seed);
        std::vector<int> h(logits.size());
        for (int i = 0; i < n; ++i) ++h[static_cast<std::size_t>(runtime::sample(logits, s, r))];
        return h;
    };
    auto expected = [&](std::vector<std::size_t> kept, double t) {
        std::vector<double> p(logits.size());
        double total = 0;
        for (auto i : kept) total += p[i] = std::exp(logits[i] / t);
        for (auto& v : p) v /= total;
        return p;
    };
    const int n = 20000;
    const auto all = histogram({.temperature = 0.7, .seed = 3}, n);
    const auto p_all = expected({0, 1, 2, 3, 4, 5}, 0.7);
    for (std::size_t i = 0; i < logits.size(); ++i) CHECK(all[i] / double(n) == Approx(p_all[i]).margin(0.015));
    const auto top3 = histogram({.temperature = 1.0, .top_k = 3, .seed = 4}, n);  // tokens 1, 3, 4
    const auto p3 = expected({1, 3, 4}, 1.0);
    for (std::size_t i = 0; i < logits.size(); ++i) CHECK(top3[i] / double(n) == Approx(p3[i]).margin(0.015));
    // top_p 0.8: tokens 1 and 3 hold 0.38 + 0.38 of the mass, token 4 brings it past 0.8.
    const auto nucleus = histogram({.temperature = 1.0, .top_p = 0.8, .seed = 5}, n);
    const auto pn = expected({1, 3, 4}, 1.0);
    for (std::size_t i = 0; i < logits.size(); ++i) CHECK(nucleus[i] / double(n) == Approx(pn[i]).margin(0.015));
    const auto narrow = histogram({.temperature = 1.0, .top_p = 0.3, .seed = 5}, 200);  // token 1 alone
    CHECK(narrow[1] == 200);

    CHECK(histogram({.temperature = 0.9, .seed = 11}, 500) == histogram({.temperature = 0.9, .seed = 11}, 500));
    CHECK_THROWS_WITH((sampling{.temperature = -1}.check()), Catch::Contains("temperature must be a finite number >= 0"));
    CHECK_THROWS_WITH((sampling{.top_p = 0}.check()), Catch::Contains("top_p must be in (0, 1]"));
    CHECK_THROWS_WITH((sampling{.top_k = -2}.check()), Catch::Contains("top_k must be >= 0"));
}

TEST_CASE("gpt2: tensor parallel (ranks as threads) gives TP 1's logits and tokens") {
    for (const std::string model : {"gpt2-tiny-a", "gpt2-tiny-b"}) {
        const auto cases = golden(model);
        std::vector<std::vector<std::int32_t>> prompts;
        for (const auto& c : cases) prompts.push_back(c.ids);
        for (const std::int64_t tp : {2, 4}) {
            INFO(model << " at TP " << tp);
            runtime::decoder<models::gpt2_family> lm(data / model, {.type = dtype::f32, .threads = 2, .tp = tp});
            // The vocabularies (301, 397) do not divide by 2 or 4: the LM head is padded and cut.
            for (const auto& c : cases) {
                const auto rows = lm.prompt_logits(c.ids);
                REQUIRE(rows.size() == c.logits.size());
                REQUIRE(rows[0].size() == c.logits[0].size());
                for (std::size_t t = 0; t < rows.size(); ++t) CHECK(max_diff(rows[t], c.logits[t]) < 1e-4);
            }
            scribe_test::check_last_logits(lm, cases);
            const auto batch = lm.generate(prompts, {.max_new_tokens = 12, .stop_at_eos = false});
            for (std::size_t b = 0; b < cases.size(); ++b) CHECK(batch.tokens[b] == cases[b].greedy);
        }
    }
}

TEST_CASE("gpt2: a tensor-parallel degree that does not divide the model is refused") {
    using Catch::Matchers::Contains;
    try {  // tiny-a has 4 heads
        runtime::decoder<models::gpt2_family> lm(data / "gpt2-tiny-a", {.type = dtype::f32, .threads = 1, .tp = 3});
        FAIL("TP 3 was accepted");
    } catch (const scribe::error& e) {
        CHECK_THAT(e.what(), Contains("tp degree 3 does not divide n_head (4)") && Contains("degrees that do: 1, 2, 4"));
    }
}

}  // namespace test_models
