// scribe/models/registry.hpp — every model family, and the one a checkpoint
// folder holds (config.json's model_type), for programs that take any of them.
//
//     models::with_family(dir, [&]<class Family>() { runtime::decoder<Family> lm(dir); ... });
//     models::with_encoder(dir, [&]<class Family>() { runtime::encoder<Family> m(dir); ... });
#pragma once

#include <filesystem>
#include <string>
#include <utility>

#include "bert.hpp"
#include "gpt2.hpp"
#include "gptj.hpp"
#include "llama.hpp"
#include "opt.hpp"

namespace scribe::models {

// The model types the families read, as config.json names them.
inline constexpr const char* supported_types = "gpt2, gptj, opt, llama, mistral";

// Calls f.template operator()<Family>() with the family of model_type `type`;
// `source` names the config in the error for an unknown type.
template <class F>
decltype(auto) with_family_type(const std::string& type, const std::string& source, F&& f) {
    if (type == "gpt2") return f.template operator()<gpt2_family>();
    if (type == "gptj") return f.template operator()<gptj_family>();
    if (type == "opt") return f.template operator()<opt_family>();
    if (type == "llama" || type == "mistral") return f.template operator()<llama_family>();
    if (type == "bert" || type == "roberta" || type == "distilbert")
        throw error(source + ": model_type \"" + type + "\" is an encoder, not a decoder: it classifies and embeds text " +
                    "(scribe classify, scribe embed; runtime::encoder) but does not generate");
    throw error(source + ": model_type \"" + io::printable(type) + "\" is not supported (" + supported_types + ")");
}

// The model_type of a config object ("gpt2" where it has none), or a clear error.
inline std::string model_type(const nlohmann::json& j, const std::string& source) {
    if (!j.is_object()) throw error(source + ": not a JSON object");
    if (!j.contains("model_type")) return "gpt2";
    if (!j["model_type"].is_string()) throw error(source + ": model_type must be a string, got " + io::shown(j["model_type"]));
    return j["model_type"].get<std::string>();
}

// The same of a folder's config.json.
inline std::string model_type(const std::filesystem::path& dir) {
    const auto file = dir / "config.json";
    return model_type(read_config_json(file), file.string());
}

// Calls f.template operator()<Family>() with the family of the folder's model.
template <class F>
decltype(auto) with_family(const std::filesystem::path& dir, F&& f) {
    return with_family_type(model_type(dir), (dir / "config.json").string(), std::forward<F>(f));
}

// Calls f.template operator()<Family>() with the encoder family of the folder's model.
template <class F>
decltype(auto) with_encoder(const std::filesystem::path& dir, F&& f) {
    return with_encoder_type(model_type(dir), (dir / "config.json").string(), std::forward<F>(f));
}

// Whether a folder holds an encoder (BERT, RoBERTa, DistilBERT).
inline bool is_encoder(const std::filesystem::path& dir) {
    const auto t = model_type(dir);
    return t == "bert" || t == "roberta" || t == "distilbert";
}

}  // namespace scribe::models
