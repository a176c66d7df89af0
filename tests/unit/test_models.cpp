// Models against Hugging Face: the tiny GPT-2 checkpoints in tests/data were made by
// scripts/reference/make_golden.py with transformers, which also recorded the
// logits of fixed prompts and their greedy continuations (golden.json). The CPU
// backend must give the same logits (within float tolerance) and the same tokens.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <scribe/models/gpt2.hpp>
#include <scribe/runtime/decoder.hpp>

using namespace scribe;
namespace fs = std::filesystem;

namespace {

const fs::path data = fs::path(SCRIBE_TEST_DATA);

struct golden_prompt {
    std::vector<std::int32_t> ids, greedy;
    std::vector<std::vector<float>> logits, step_logits;
};

std::vector<golden_prompt> golden(const std::string& model) {
    std::ifstream in(data / model / "golden.json");
    const auto j = nlohmann::json::parse(in);
    std::vector<golden_prompt> out;
    for (const auto& p : j["prompts"])
        out.push_back({p["ids"].get<std::vector<std::int32_t>>(), p["greedy"].get<std::vector<std::int32_t>>(),
                       p["logits"].get<std::vector<std::vector<float>>>(),
                       p["step_logits"].get<std::vector<std::vector<float>>>()});
    return out;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
    return m;
}

}  // namespace

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
        // All prompts at once: right-padded into one bucket, each at its own position.
        std::vector<std::vector<std::int32_t>> prompts;
        for (const auto& c : cases) prompts.push_back(c.ids);
        const auto batch = lm.generate(prompts, {.max_new_tokens = 12, .stop_at_eos = false});
        for (std::size_t b = 0; b < cases.size(); ++b) CHECK(batch.tokens[b] == cases[b].greedy);
    }
}
