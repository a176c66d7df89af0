// Speculative decoding (runtime/speculative.hpp): the verify graph (decode over
// several tokens) gives the logits Hugging Face gives one token at a time; greedy
// speculation gives exactly the target's own greedy tokens for every family, at
// TP 1 and 2 (and 4 for grouped-query LLaMA), with a draft that often disagrees (the target's first layer only,
// written here as a checkpoint of its own) and with the target as its own draft;
// sampled speculation draws each token from the target's distribution (a
// chi-square test over seeded runs, which the draft's distribution fails).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <scribe/io/checkpoint.hpp>
#include <scribe/models/registry.hpp>
#include <scribe/runtime/speculative.hpp>

#include "golden.hpp"

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_speculative {

using namespace scribe;
using scribe_test::data;
using scribe_test::golden;
using scribe_test::max_diff;

namespace {

// A draft made of a checkpoint's first `layers` layers (its embeddings, those
// layers, the final norm and the head): the same tokenizer, cheaper, and often of
// another mind. Written to a temporary folder, once per process.
struct temporary_folders {
    std::vector<std::filesystem::path> made;
    ~temporary_folders() {
        std::error_code ec;
        for (const auto& f : made) std::filesystem::remove_all(f, ec);
    }
};
temporary_folders drafts_made;

template <class Family>
std::filesystem::path first_layers(const std::string& model, std::int64_t layers) {
    const auto out = std::filesystem::temp_directory_path() /
                     ("scribe-draft-" + model + "-" + std::to_string(layers) + "-" + std::to_string(::getpid()));
    if (std::filesystem::exists(out / "model.safetensors")) return out;
    std::filesystem::create_directories(out);
    drafts_made.made.push_back(out);
    auto config = nlohmann::json::parse(std::ifstream(data / model / "config.json"));
    for (const auto* key : {"n_layer", "num_hidden_layers"})
        if (config.contains(key)) config[key] = layers;
    std::ofstream(out / "config.json") << config.dump(2);
    const auto c = Family::config::load(out / "config.json");
    std::set<std::string> wanted;
    for (const auto& w : Family::weights(c)) wanted.insert(w.name);
    const io::checkpoint ckpt(data / model);
    std::vector<io::tensor_to_write> keep;
    for (const auto& n : ckpt.names()) {
        const std::string bare = n.starts_with(Family::prefix) ? n.substr(std::string(Family::prefix).size()) : n;
        if (!wanted.contains(bare)) continue;
        const auto& e = ckpt.entry(n);
        keep.push_back({n, e.type, e.shape, ckpt.bytes(n)});
    }
    io::write_safetensors(out / "model.safetensors", keep);
    return out;
}

struct tally {
    std::int64_t drafted = 0, accepted = 0;
};

// Greedy speculation with every K from 1 to 5 equals the target's greedy
// generate() on each golden prompt; returns what the draft proposed and got kept.
template <class Family>
tally check_greedy(runtime::decoder<Family>& target, runtime::decoder<Family>& draft, const std::string& model, std::int64_t new_tokens) {
    tally t;
    for (const auto& c : golden(model)) {
        INFO(model << ", prompt of " << c.ids.size() << " tokens");
        const runtime::generate_options o{.max_new_tokens = new_tokens, .stop_at_eos = false};
        const auto plain = target.generate({c.ids}, o).tokens[0];
        REQUIRE(plain.size() == static_cast<std::size_t>(new_tokens));
        for (std::int64_t k = 1; k <= 5; ++k) {
            INFO("K = " << k);
            const auto s = runtime::speculative_generate(target, draft, c.ids, o, {.draft_tokens = k});
            CHECK(s.tokens[0] == plain);
            CHECK(s.accepted <= s.drafted);
            CHECK(s.rounds == s.decode_steps);
            // Every verify step keeps at least one token (the target's), at most k + 1.
            CHECK(s.rounds >= (new_tokens - 1 + k) / (k + 1));
            CHECK(s.rounds <= new_tokens - 1);
            t.drafted += s.drafted;
            t.accepted += s.accepted;
        }
    }
    return t;
}

template <class Family>
void check_family(const std::string& model, std::vector<std::int64_t> degrees = {1, 2}) {
    const auto draft_dir = first_layers<Family>(model, 1);
    for (const std::int64_t tp : degrees) {
        INFO(model << " at TP " << tp);
        runtime::decoder<Family> target(data / model, {.threads = 2, .tp = tp});
        runtime::decoder<Family> draft(draft_dir, {.threads = 2, .tp = tp});
        // New tokens up to the model's positions: the verify step near the end of
        // the cache runs narrower.
        const auto t = check_greedy(target, draft, model, 24);
        INFO("the first layer's guesses kept: " << t.accepted << " of " << t.drafted);
        CHECK(t.accepted < t.drafted);  // wrong often: rejection and rollback are exercised
        if (tp == 1) {
            const auto self = check_greedy(target, target, model, 12);  // its own draft agrees always
            CHECK(self.drafted > 0);
            CHECK(self.accepted == self.drafted);
        }
    }
}

// Chi-square statistic of counts against probabilities p (bins with expected
// counts under 5 pooled into one), and its degrees of freedom.
std::pair<double, int> chi_square(const std::map<std::int32_t, std::int64_t>& counts, const std::vector<double>& p, std::int64_t n) {
    double stat = 0, pooled_expected = 0, pooled_observed = 0;
    int bins = 0;
    std::int64_t seen = 0;
    for (std::size_t v = 0; v < p.size(); ++v) {
        const auto it = counts.find(static_cast<std::int32_t>(v));
        const double observed = it == counts.end() ? 0.0 : static_cast<double>(it->second);
        seen += static_cast<std::int64_t>(observed);
        const double expected = p[v] * static_cast<double>(n);
        if (expected < 5) {
            pooled_expected += expected;
            pooled_observed += observed;
            continue;
        }
        stat += (observed - expected) * (observed - expected) / expected;
        ++bins;
    }
    if (pooled_expected > 0) {
        stat += (pooled_observed - pooled_expected) * (pooled_observed - pooled_expected) / std::max(pooled_expected, 1e-9);
        ++bins;
    }
    REQUIRE(seen == n);
    return {stat, bins - 1};
}

// The chi-square value a statistic of `df` degrees of freedom exceeds with
// probability 1e-4 (Wilson-Hilferty).
double critical(int df) {
    const double d = df, z = 3.719;
    return d * std::pow(1 - 2 / (9 * d) + z * std::sqrt(2 / (9 * d)), 3);
}

}  // namespace

TEST_CASE("verify graph: k tokens at once give Hugging Face's logits of each, and rewinding rolls the cache back") {
    const std::string model = "llama-tiny-gqa";
    runtime::decoder<models::llama_family> lm(data / model, {.threads = 2});
    for (const auto& c : golden(model)) {
        INFO("prompt of " << c.ids.size() << " tokens");
        runtime::decoder<models::llama_family>::sequence s(lm);
        const auto first = s.start(c.ids, 16);
        CHECK(max_diff(first, c.logits.back()) < 1e-4);
        // golden step_logits[i]: after feeding greedy[i - 1] at position n + i - 1.
        const std::vector<std::int32_t> fed(c.greedy.begin(), c.greedy.begin() + 5);
        const auto rows = s.extend(fed);
        REQUIRE(rows.size() == 5 * static_cast<std::size_t>(lm.model_config().vocab_size));
        const auto V = static_cast<std::ptrdiff_t>(lm.model_config().vocab_size);
        for (std::ptrdiff_t i = 0; i < 5; ++i)
            CHECK(max_diff(std::vector<float>(rows.begin() + i * V, rows.begin() + (i + 1) * V), c.step_logits[static_cast<std::size_t>(i + 1)]) < 1e-4);
        CHECK(s.length() == static_cast<std::int64_t>(c.ids.size()) + 5);
        // Roll back 3 positions, feed other tokens there, then the golden ones again:
        // the logits are the golden ones, so the stale rows were overwritten.
        s.rewind(static_cast<std::int64_t>(c.ids.size()) + 2);
        const std::vector<std::int32_t> other{7, 8, 9};
        (void)s.extend(other);
        s.rewind(static_cast<std::int64_t>(c.ids.size()) + 2);
        const auto again = s.extend(std::span<const std::int32_t>(fed).subspan(2, 1));
        CHECK(max_diff(again, c.step_logits[3]) < 1e-4);
        CHECK_THROWS_WITH(s.rewind(0), Catch::Contains("rewind to 0"));
        CHECK_THROWS_WITH(s.extend(std::vector<std::int32_t>{99999}), Catch::Contains("outside the vocabulary"));
        CHECK_THROWS_WITH(s.extend(std::vector<std::int32_t>(static_cast<std::size_t>(s.capacity()), 1)), Catch::Contains("at most"));
    }
}

TEST_CASE("batch sequence: prompts of different lengths stepped together give Hugging Face's logits of each row, at TP 1 and 2") {
    const std::string model = "llama-tiny-gqa";
    const auto cases = golden(model);
    REQUIRE(cases.size() >= 2);
    for (int tp : {1, 2}) {
        INFO("tp " << tp);
        runtime::decoder<models::llama_family> lm(data / model, {.threads = 2, .tp = tp});
        runtime::decoder<models::llama_family>::batch_sequence s(lm);
        std::vector<std::vector<std::int32_t>> prompts;
        for (const auto& c : cases) prompts.push_back(c.ids);
        const auto V = static_cast<std::ptrdiff_t>(lm.model_config().vocab_size);
        auto row = [&](const std::vector<float>& all, std::size_t b) {
            return std::vector<float>(all.begin() + static_cast<std::ptrdiff_t>(b) * V, all.begin() + static_cast<std::ptrdiff_t>(b + 1) * V);
        };
        const auto first = s.start(prompts, 8);
        REQUIRE(first.size() == cases.size() * static_cast<std::size_t>(V));
        for (std::size_t b = 0; b < cases.size(); ++b) CHECK(max_diff(row(first, b), cases[b].logits.back()) < 1e-4);
        // golden step_logits[i]: after feeding greedy[i - 1] at the row's next position.
        for (std::size_t i = 0; i < 4; ++i) {
            std::vector<std::int32_t> next;
            for (const auto& c : cases) next.push_back(c.greedy[i]);
            const auto rows = s.step(next);
            for (std::size_t b = 0; b < cases.size(); ++b) CHECK(max_diff(row(rows, b), cases[b].step_logits[i + 1]) < 1e-4);
        }
        for (std::size_t b = 0; b < cases.size(); ++b) CHECK(s.length(b) == static_cast<std::int64_t>(cases[b].ids.size()) + 4);
        CHECK_THROWS_WITH(s.step(std::vector<std::int32_t>{1}), Catch::Contains("1 tokens fed to a batch of"));
        std::vector<std::int32_t> bad(cases.size(), 1);
        bad.back() = 99999;
        CHECK_THROWS_WITH(s.step(bad), Catch::Contains("outside the vocabulary"));
        const std::vector<std::int32_t> ones(cases.size(), 1);
        CHECK_THROWS_WITH([&] { for (;;) (void)s.step(ones); }(), Catch::Contains("all its cache has"));
    }
}

TEST_CASE("speculative decoding, greedy: exactly the target's own tokens for GPT-2, OPT, GPT-J, LLaMA, Mistral, TP 1, 2 (and 4)") {
    check_family<models::gpt2_family>("gpt2-tiny-a");
    check_family<models::opt_family>("opt-tiny");
    check_family<models::opt_family>("opt-tiny-post");
    check_family<models::gptj_family>("gptj-tiny");
    check_family<models::llama_family>("llama-tiny-gqa", {1, 2, 4});  // KV heads split at TP 2, replicated at 4
    check_family<models::llama_family>("llama-tiny-mqa");
    check_family<models::llama_family>("mistral-tiny");
}

TEST_CASE("speculative decoding: a draft of another family with the same vocabulary; end tokens stop it") {
    // GPT-2's tiny checkpoint drafting for itself through a stepper of another
    // type, and the end token: generation stops at it, as generate() does.
    runtime::decoder<models::gpt2_family> target(data / "gpt2-tiny-a", {.threads = 2});
    const auto prompt = golden("gpt2-tiny-a")[2].ids;
    const auto plain = target.generate({prompt}, {.max_new_tokens = 20, .stop_at_eos = false}).tokens[0];
    const auto stop_at = plain[6];  // a token the greedy continuation makes
    const auto until = static_cast<std::size_t>(std::find(plain.begin(), plain.end(), stop_at) - plain.begin()) + 1;
    runtime::decoder<models::gpt2_family> draft(first_layers<models::gpt2_family>("gpt2-tiny-a", 1), {.threads = 1});
    const auto s = runtime::speculative_generate(target, draft, prompt, {.max_new_tokens = 20, .eos = {stop_at}}, {.draft_tokens = 3});
    CHECK(s.tokens[0] == std::vector<std::int32_t>(plain.begin(), plain.begin() + static_cast<std::ptrdiff_t>(until)));
    // on_token returning false stops after that token.
    std::size_t calls = 0;
    const auto cut = runtime::speculative_generate(target, draft, prompt,
                                                   {.max_new_tokens = 20, .stop_at_eos = false,
                                                    .on_token = [&](std::size_t, std::int32_t) { return ++calls < 5; }},
                                                   {.draft_tokens = 4});
    CHECK(cut.tokens[0] == std::vector<std::int32_t>(plain.begin(), plain.begin() + 5));
    CHECK(calls == 5);
}

TEST_CASE("speculative decoding: bad pairs and options are refused with what to do") {
    runtime::decoder<models::gpt2_family> target(data / "gpt2-tiny-a", {.threads = 1});
    runtime::decoder<models::gpt2_family> other(data / "gpt2-tiny-b", {.threads = 1});
    const std::vector<std::int32_t> prompt{1, 2, 3};
    CHECK_THROWS_WITH(runtime::speculative_generate(target, other, prompt, {.max_new_tokens = 4}),
                      Catch::Contains("draft's vocabulary has 397 ids, the target's 301") && Catch::Contains("share a tokenizer"));
    // Padded vocabularies: the ids both read are enough.
    CHECK(runtime::speculative_generate(target, other, prompt, {.max_new_tokens = 4, .vocab_limit = 301}).tokens[0].size() <= 4);
    CHECK_THROWS_WITH(runtime::speculative_generate(target, other, prompt, {.max_new_tokens = 4, .vocab_limit = 302}),
                      Catch::Contains("vocab_limit 302"));
    CHECK_THROWS_WITH(runtime::speculative_generate(target, target, prompt, {.max_new_tokens = 4}, {.draft_tokens = 0}),
                      Catch::Contains("1 to 64 tokens"));
    CHECK_THROWS_WITH(runtime::speculative_generate(target, target, prompt, {.max_new_tokens = 62}),
                      Catch::Contains("exceeds the target's 64 positions"));
    CHECK_THROWS_WITH(runtime::speculative_generate(target, target, {1, 400}, {.max_new_tokens = 4}), Catch::Contains("token 400"));
    CHECK_THROWS_WITH(runtime::speculative_generate(target, target, prompt, {.max_new_tokens = 4, .sample = {.temperature = -1}}),
                      Catch::Contains("temperature"));
}

TEST_CASE("speculative decoding, sampled: each token is distributed as the target draws it (chi-square over 3000 seeded runs)") {
    const std::string model = "llama-tiny-gqa";
    runtime::decoder<models::llama_family> target(data / model, {.threads = 2});
    runtime::decoder<models::llama_family> draft(first_layers<models::llama_family>(model, 1), {.threads = 2});
    const auto prompt = golden(model)[1].ids;
    const runtime::sampling sample{.temperature = 1.0, .top_k = 6};
    constexpr std::int64_t runs = 3000;
    std::vector<std::vector<std::int32_t>> made;
    std::int64_t drafted = 0, accepted = 0;
    for (std::int64_t r = 0; r < runs; ++r) {
        auto o = runtime::generate_options{.max_new_tokens = 4, .stop_at_eos = false};
        o.sample = sample;
        o.sample.seed = static_cast<std::uint64_t>(r);
        const auto s = runtime::speculative_generate(target, draft, prompt, o, {.draft_tokens = 2});
        REQUIRE(s.tokens[0].size() == 4);
        made.push_back(s.tokens[0]);
        drafted += s.drafted;
        accepted += s.accepted;
    }
    INFO("acceptance " << accepted << " of " << drafted);
    CHECK(accepted > drafted / 10);
    CHECK(accepted < drafted * 9 / 10);  // rejections, and so the residual draws, are exercised

    // The distribution of a position given the tokens before it, from the
    // target's and the draft's logits for that prefix.
    const auto V = static_cast<std::size_t>(target.model_config().vocab_size);
    auto next = [&](auto& lm, std::vector<std::int32_t> prefix) {
        const auto rows = lm.prompt_logits(prefix);
        return runtime::probabilities(std::span<const float>(rows.back().data(), V), sample);
    };
    // Tokens 2 and 3 given what came before, for every prefix seen in at least 200 runs.
    int groups = 0;
    for (std::size_t position = 1; position <= 2; ++position) {
        std::map<std::vector<std::int32_t>, std::map<std::int32_t, std::int64_t>> by_prefix;
        for (const auto& m : made) ++by_prefix[std::vector<std::int32_t>(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(position))][m[position]];
        for (const auto& [before, counts] : by_prefix) {
            std::int64_t n = 0;
            for (const auto& [_, c] : counts) n += c;
            if (n < 200) continue;
            auto prefix = prompt;
            prefix.insert(prefix.end(), before.begin(), before.end());
            const auto [stat, df] = chi_square(counts, next(target, prefix), n);
            INFO("token " << position + 1 << " after a prefix seen " << n << " times: chi-square " << stat << " on " << df << " df");
            CHECK(stat < critical(df));
            // The test can tell the draft's distribution from the target's.
            const auto [against_draft, df_draft] = chi_square(counts, next(draft, prefix), n);
            CHECK(against_draft > critical(df_draft));
            ++groups;
        }
    }
    CHECK(groups >= 3);
}

}  // namespace test_speculative
