// tools/manifest.hpp — what export-hlo writes about each module in manifest.json:
// its files, its parameters (number, name, dtype, dims) and outputs, and which
// outputs update which parameters in place. Decoders (tools/scribe.cpp) and
// encoders (tools/encode.cpp) share it.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <scribe/hlo/export.hpp>

namespace scribe::cli {

inline nlohmann::json shape_json(const shape& s) {
    auto j = nlohmann::json::array();
    for (const auto& d : s) j.push_back({{"name", d.name}, {"extent", d.extent}});
    return j;
}

// `output_names`: the outputs' names (default: logits, then each aliased cache's).
inline nlohmann::json describe(const graph& g, const hlo::written& files, const std::vector<std::string>& output_names = {}) {
    nlohmann::json params = nlohmann::json::array(), outs = nlohmann::json::array(), aliases = nlohmann::json::array();
    for (const auto& n : g.nodes())
        if (n.kind == op::parameter)
            params.push_back({{"number", n.parameter_number}, {"name", n.label}, {"dtype", std::string(name(n.type))}, {"shape", shape_json(n.dims)}});
    std::sort(params.begin(), params.end(), [](const auto& x, const auto& y) { return x["number"] < y["number"]; });
    for (std::size_t k = 0; k < g.outputs().size(); ++k) {
        const auto& n = g[g.outputs()[k]];
        const auto named = k < output_names.size() ? output_names[k] : k == 0 ? std::string("logits") : params[0]["name"].get<std::string>();
        outs.push_back({{"index", k}, {"name", named},
                        {"dtype", std::string(name(n.type))}, {"shape", shape_json(n.dims)}});
    }
    for (const auto& al : g.aliases()) {
        outs[al.output]["name"] = params[static_cast<std::size_t>(al.parameter_number)]["name"];
        aliases.push_back({{"output", al.output}, {"parameter", al.parameter_number}});
    }
    return {{"name", g.name()}, {"text", files.text.filename().string()}, {"proto", files.proto.filename().string()},
            {"parameters", params}, {"outputs", outs}, {"aliases", aliases}};
}

}  // namespace scribe::cli
