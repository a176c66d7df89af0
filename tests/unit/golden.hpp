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

}  // namespace scribe_test
