// OPT, GPT-J, LLaMA and Mistral against Hugging Face: the tiny checkpoints in
// tests/data were made by scripts/reference/make_golden.py with transformers,
// which recorded the logits of fixed prompts and their greedy continuations
// (golden.json). The CPU backend must give the same logits (within float
// tolerance) and the same tokens, alone and as a batch, at tensor-parallel
// degrees 1, 2 and 4 (for grouped-query LLaMA: KV heads split at some degrees,
// replicated at others).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <scribe/io/tokenizer.hpp>
#include <scribe/models/registry.hpp>
#include <scribe/runtime/decoder.hpp>

#include "golden.hpp"

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_families {

using namespace scribe;
using scribe_test::data;
using scribe_test::golden;
using scribe_test::max_diff;

namespace {

// Every golden prompt's logits at every position, the last position's from the
// graph generation prefills with (alone and as a padded batch), and the greedy
// tokens of all the prompts as one batch, at TP 1, 2 and 4; the first prompt's
// greedy tokens alone.
template <class Family>
void check_golden(const std::string& model) {
    const auto cases = golden(model);
    std::vector<std::vector<std::int32_t>> prompts;
    for (const auto& c : cases) prompts.push_back(c.ids);
    for (const std::int64_t tp : {1, 2, 4}) {
        INFO(model << " at TP " << tp);
        runtime::decoder<Family> lm(data / model, {.type = dtype::f32, .threads = 2, .tp = tp});
        for (const auto& c : cases) {
            INFO("prompt of " << c.ids.size() << " tokens");
            const auto rows = lm.prompt_logits(c.ids);
            REQUIRE(rows.size() == c.logits.size());
            for (std::size_t t = 0; t < rows.size(); ++t) CHECK(max_diff(rows[t], c.logits[t]) < 1e-4);
        }
        scribe_test::check_last_logits(lm, cases);
        const auto batch = lm.generate(prompts, {.max_new_tokens = 12, .stop_at_eos = false});
        for (std::size_t b = 0; b < cases.size(); ++b) CHECK(batch.tokens[b] == cases[b].greedy);
        // The decode graph's own time is counted within the decode time (every rank's run, at TP > 1).
        CHECK(batch.decode_steps == 11);
        CHECK(batch.decode_graph_seconds > 0);
        CHECK(batch.decode_graph_seconds <= batch.decode_seconds);
        if (tp == 1) CHECK(lm.generate({cases[0].ids}, {.max_new_tokens = 12, .stop_at_eos = false}).tokens[0] == cases[0].greedy);
    }
}

}  // namespace

TEST_CASE("opt: pre-LN and post-LN with projections equal Hugging Face's logits and tokens, TP 1/2/4") {
    check_golden<models::opt_family>("opt-tiny");
    check_golden<models::opt_family>("opt-tiny-post");
}

TEST_CASE("gptj: partial interleaved rotary and the parallel residual equal Hugging Face's, TP 1/2/4") {
    check_golden<models::gptj_family>("gptj-tiny");
}

TEST_CASE("llama: grouped- and multi-query, Llama-3 rope scaling, Mistral's window equal Hugging Face's, TP 1/2/4") {
    check_golden<models::llama_family>("llama-tiny-gqa");  // 8 heads, 2 KV heads: split at TP 2, replicated at TP 4
    check_golden<models::llama_family>("llama-tiny-mqa");  // one KV head: replicated at TP 2 and 4; tied LM head
    check_golden<models::llama_family>("mistral-tiny");    // head_dim 12 != hidden / heads; sliding window 8
}

TEST_CASE("llama: weights converted to f16 and bf16 on load stay close to Hugging Face's logits") {
    const auto cases = golden("llama-tiny-gqa");
    for (auto [type, tolerance] : {std::pair{dtype::f16, 0.05}, std::pair{dtype::bf16, 0.5}}) {
        INFO(name(type));
        runtime::decoder<models::llama_family> lm(data / "llama-tiny-gqa", {.type = type, .threads = 1});
        CHECK(lm.converted_bytes() == lm.weight_bytes());
        for (const auto& c : cases) {
            const auto rows = lm.prompt_logits(c.ids);
            for (std::size_t t = 0; t < rows.size(); ++t) CHECK(max_diff(rows[t], c.logits[t]) < tolerance);
        }
    }
}

TEST_CASE("llama: replicated KV heads survive a pre-sharded save and load") {
    namespace fs = std::filesystem;
    const auto dir = fs::temp_directory_path() / ("scribe_test_families_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    const auto cases = golden("llama-tiny-mqa");
    {
        runtime::decoder<models::llama_family> lm(data / "llama-tiny-mqa", {.type = dtype::f32, .threads = 1, .tp = 4});
        lm.save_sharded(dir);
    }
    fs::copy_file(data / "llama-tiny-mqa" / "config.json", dir / "config.json");
    runtime::decoder<models::llama_family> lm(dir, {.type = dtype::f32, .threads = 2, .tp = 4});
    CHECK(lm.presharded());
    // Every rank holds the one KV head whole (k_proj [1, 10, 40]), and a quarter of the query heads.
    const auto plan = lm.memory(1, 64);
    const auto one_rank = io::safetensors(runtime::rank_file(dir, 4, 1));
    CHECK(one_rank.entry("layers.0.self_attn.k_proj.weight").shape == std::vector<std::int64_t>{1, 10, 40});
    CHECK(one_rank.entry("layers.0.self_attn.q_proj.weight").shape == std::vector<std::int64_t>{1, 10, 40});
    CHECK(plan.kv_cache == 2 * 2 * 64 * 1 * 10 * 4);  // layers x (key, value) x positions x 1 KV head x head_dim x f32
    for (const auto& c : cases)
        CHECK(lm.generate({c.ids}, {.max_new_tokens = 12, .stop_at_eos = false}).tokens[0] == c.greedy);
    fs::remove_all(dir);
}

TEST_CASE("rope: inverse frequencies equal Hugging Face's, with Llama-3 scaling") {
    // LlamaRotaryEmbedding's inv_freq for llama-tiny-mqa's config (transformers 5.23, float32):
    // the first frequency is blended, the other four divided by the factor.
    const models::rope r{.dims = 10, .theta = 500000.0, .scaling = "llama3", .factor = 8.0, .low_freq_factor = 1.0,
                         .high_freq_factor = 4.0, .original_positions = 16};
    const std::vector<double> hf = {0.57606, 0.0090597, 6.5663e-4, 4.7591e-5, 3.4493e-6};
    const auto f = r.inv_freq();
    REQUIRE(f.size() == hf.size());
    for (std::size_t i = 0; i < f.size(); ++i) CHECK(f[i] == Approx(hf[i]).epsilon(1e-4));
    // Without scaling: 1 / theta^(2i / dims).
    const models::rope plain{.dims = 6};
    CHECK(plain.inv_freq() == std::vector<double>{1.0, static_cast<float>(1.0f / std::pow(10000.0f, 2.0f / 6)),
                                                  static_cast<float>(1.0f / std::pow(10000.0f, 4.0f / 6))});
}

TEST_CASE("registry: config.json's model_type picks the family; others are refused") {
    auto family_of = [](const std::string& model) {
        return models::with_family(data / model, []<class F>() { return std::string(F::name); });
    };
    CHECK(family_of("gpt2-tiny-a") == "GPT-2");
    CHECK(family_of("opt-tiny") == "OPT");
    CHECK(family_of("gptj-tiny") == "GPT-J");
    CHECK(family_of("llama-tiny-gqa") == "LLaMA");
    CHECK(family_of("mistral-tiny") == "LLaMA");
    const auto cfg = [](const nlohmann::json& j) { return models::llama::config::parse(j, "config.json"); };
    nlohmann::json base = {{"model_type", "llama"}, {"vocab_size", 10}, {"max_position_embeddings", 16}, {"num_hidden_layers", 1},
                           {"hidden_size", 8}, {"intermediate_size", 12}, {"num_attention_heads", 2}};
    CHECK(cfg(base).n_kv_head == 2);
    CHECK(cfg(base).head_dim == 4);
    auto with = [&](const char* key, nlohmann::json v) {
        auto j = base;
        j[key] = std::move(v);
        return j;
    };
    using Catch::Matchers::Contains;
    CHECK_THROWS_WITH(cfg(with("model_type", "gpt2")), Contains("config.json: model_type is \"gpt2\", the LLaMA loader reads"));
    CHECK_THROWS_WITH(cfg(with("num_key_value_heads", 3)), Contains("num_attention_heads 2 is not divisible by num_key_value_heads 3"));
    CHECK_THROWS_WITH(cfg(with("mlp_bias", true)), Contains("mlp_bias = true is not supported"));
    CHECK_THROWS_WITH(cfg(with("rope_scaling", {{"rope_type", "linear"}})), Contains("needs a `factor`"));
    CHECK(cfg(with("rope_scaling", {{"rope_type", "linear"}, {"factor", 2.0}})).rope.scaling == "linear");
    CHECK(cfg(with("rope_theta", 5e5)).rope.theta == 5e5);
    CHECK(cfg(with("sliding_window", 64)).sliding_window == 0);  // never reached: no window
    CHECK(cfg(with("sliding_window", 4)).sliding_window == 4);
}

TEST_CASE("generation stops at any id of an eos_token_id list, generation_config.json's before config.json's") {
    // A copy of the LLaMA checkpoint whose end tokens are two ids the greedy
    // continuation makes: generation stops at the first of them to come.
    const auto cases = golden("llama-tiny-gqa");
    const auto& greedy = cases[0].greedy;
    REQUIRE(greedy.size() >= 6);
    const auto dir = std::filesystem::temp_directory_path() / ("scribe_test_eos_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::copy(data / "llama-tiny-gqa", dir);
    auto config = nlohmann::json::parse(std::ifstream(dir / "config.json"));
    // The first place where the continuation has a token it has not made before.
    std::size_t stop_at = 4;
    while (std::find(greedy.begin(), greedy.begin() + static_cast<std::ptrdiff_t>(stop_at), greedy[stop_at]) != greedy.begin() + static_cast<std::ptrdiff_t>(stop_at))
        ++stop_at;
    REQUIRE(stop_at < greedy.size());
    const auto vocab = config["vocab_size"].get<std::int64_t>();
    std::int32_t unused = 0;  // an id the continuation never makes
    while (std::find(greedy.begin(), greedy.end(), unused) != greedy.end()) ++unused;
    auto run = [&] {
        runtime::decoder<models::llama_family> lm(dir, {.type = dtype::f32, .threads = 1});
        return lm.generate({cases[0].ids}, {.max_new_tokens = static_cast<std::int64_t>(greedy.size())}).tokens[0];
    };
    SECTION("config.json's list") {
        config["eos_token_id"] = {unused, greedy[stop_at]};
        std::ofstream(dir / "config.json") << config.dump();
        const std::vector<std::int32_t> want(greedy.begin(), greedy.begin() + static_cast<std::ptrdiff_t>(stop_at) + 1);
        CHECK(run() == want);
    }
    SECTION("generation_config.json's list replaces config.json's") {
        config["eos_token_id"] = greedy[1];
        std::ofstream(dir / "config.json") << config.dump();
        std::ofstream(dir / "generation_config.json") << nlohmann::json({{"eos_token_id", {greedy[stop_at], unused}}}).dump();
        const std::vector<std::int32_t> want(greedy.begin(), greedy.begin() + static_cast<std::ptrdiff_t>(stop_at) + 1);
        CHECK(run() == want);
    }
    SECTION("an id outside the vocabulary is refused, naming the file and the field") {
        std::ofstream(dir / "generation_config.json") << nlohmann::json({{"eos_token_id", {1, vocab}}}).dump();
        CHECK_THROWS_WITH(run(), Catch::Contains("generation_config.json") && Catch::Contains("eos_token_id"));
        std::ofstream(dir / "generation_config.json") << nlohmann::json({{"eos_token_id", nlohmann::json::array()}}).dump();
        CHECK_THROWS_WITH(run(), Catch::Contains("eos_token_id") && Catch::Contains("or a list of them"));
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("llama with Llama 2's and Llama 3's tokenizers: text to ids with BOS, logits and greedy tokens equal Hugging Face's") {
    // tests/data/llama2-sp-tiny and llama3-bpe-tiny (scripts/reference/make_tokenizer_models.py):
    // the prompt text through the folder's tokenizer gives the reference's ids (BOS
    // first), and generation stops where transformers' does (generation_config.json).
    for (const std::string model : {"llama2-sp-tiny", "llama3-bpe-tiny"}) {
        INFO(model);
        const auto tok = io::tokenizer::from_folder(data / model);
        const auto j = nlohmann::json::parse(std::ifstream(data / model / "golden.json"));
        const auto cases = golden(model);
        runtime::decoder<models::llama_family> lm(data / model, {.type = dtype::f32, .threads = 1});
        for (std::size_t i = 0; i < cases.size(); ++i) {
            const std::string text = j["prompts"][i]["text"];
            INFO("prompt " << text);
            CHECK(tok.encode_with_specials(text) == cases[i].ids);
            const auto rows = lm.prompt_logits(cases[i].ids);
            REQUIRE(rows.size() == cases[i].logits.size());
            for (std::size_t t = 0; t < rows.size(); ++t) CHECK(max_diff(rows[t], cases[i].logits[t]) < 1e-4);
            CHECK(lm.generate({cases[i].ids}, {.max_new_tokens = 12}).tokens[0] == cases[i].greedy);
        }
    }
}

}  // namespace test_families
