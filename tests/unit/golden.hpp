// The golden outputs of the tiny checkpoints in tests/data: golden.json, written
// by scripts/reference/make_golden.py from Hugging Face transformers.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace scribe_test {

inline const std::filesystem::path data = std::filesystem::path(SCRIBE_TEST_DATA);

struct golden_prompt {
    std::vector<std::int32_t> ids, greedy;
    std::vector<std::vector<float>> logits, step_logits;
};

inline std::vector<golden_prompt> golden(const std::string& model) {
    std::ifstream in(data / model / "golden.json");
    const auto j = nlohmann::json::parse(in);
    std::vector<golden_prompt> out;
    for (const auto& p : j["prompts"])
        out.push_back({p["ids"].get<std::vector<std::int32_t>>(), p["greedy"].get<std::vector<std::int32_t>>(),
                       p["logits"].get<std::vector<std::vector<float>>>(),
                       p["step_logits"].get<std::vector<std::vector<float>>>()});
    return out;
}

inline double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
    return m;
}

// The prefill graph that outputs each prompt's last logits only — what generation
// runs, its last layer computed for one row per prompt (models::step::layers) —
// against Hugging Face's logits at each prompt's last position: all the prompts as
// one right-padded batch, and the first alone. LM is a runtime::decoder.
template <class LM>
void check_last_logits(LM& lm, const std::vector<golden_prompt>& cases, double tolerance = 1e-4) {
    std::vector<std::vector<std::int32_t>> prompts;
    for (const auto& c : cases) prompts.push_back(c.ids);
    const auto vocab = cases.at(0).logits.back().size();
    typename LM::batch_sequence batch(lm);
    const auto rows = batch.start(prompts, 4);
    REQUIRE(rows.size() == cases.size() * vocab);
    for (std::size_t b = 0; b < cases.size(); ++b) {
        INFO("row " << b << " of the batch, a prompt of " << cases[b].ids.size() << " tokens");
        const auto at = rows.begin() + static_cast<std::ptrdiff_t>(b * vocab);
        CHECK(max_diff({at, at + static_cast<std::ptrdiff_t>(vocab)}, cases[b].logits.back()) < tolerance);
    }
    typename LM::sequence one(lm);
    CHECK(max_diff(one.start(prompts[0], 4), cases[0].logits.back()) < tolerance);
}

}  // namespace scribe_test
