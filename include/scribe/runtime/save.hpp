// scribe/runtime/save.hpp — writes a model as a Hugging Face folder that
// `transformers` loads with from_pretrained and Scribe reads back:
//
//   model.safetensors   every weight under the *ForCausalLM class's name (the
//                       family's prefix, "transformer." or "model.", except the
//                       LM head's own), in the stored shape, in the model's dtype,
//                       with __metadata__ format "pt"
//   config.json         the model's config, its dtype field set to that dtype
//   tokenizer files     copied from the folder the tokenizer came from
//
// Every file is written atomically (io::atomic_file): a folder being saved when
// the run is killed holds the old files or the new ones, never a torn one.
//
//     runtime::save_pretrained<Family>(out, config_json, trainer.weights(), dtype::f32, model_dir);
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../io/safetensors.hpp"
#include "weight_files.hpp"

namespace scribe::runtime {

// The tokenizer's files a model folder may hold (each copied when present).
inline const std::vector<std::string>& tokenizer_files() {
    static const std::vector<std::string> names = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                                    "vocab.json",     "merges.txt",            "tokenizer.model",
                                                    "added_tokens.json", "generation_config.json"};
    return names;
}

// torch's name of a dtype, as config.json's torch_dtype / dtype says it.
inline std::string torch_dtype_name(dtype t) {
    switch (t) {
        case dtype::f32: return "float32";
        case dtype::f16: return "float16";
        case dtype::bf16: return "bfloat16";
        default: throw error("save: weights are saved as f32, f16 or bf16, not " + std::string(name(t)));
    }
}

// The dtype a config.json says its weights are in (transformers 5's `dtype`, or
// `torch_dtype`): f32, f16 or bf16; f32 when it says none or another.
inline dtype config_dtype(const nlohmann::json& config) {
    for (const auto* key : {"dtype", "torch_dtype"}) {
        if (!config.is_object() || !config.contains(key) || !config[key].is_string()) continue;
        const auto v = config[key].get<std::string>();
        if (v == "float16") return dtype::f16;
        if (v == "bfloat16") return dtype::bf16;
        return dtype::f32;
    }
    return dtype::f32;
}

// Writes `weights` (every weight of `specs` by name, whole — not a rank's part —
// in the dims the graphs read) as a Hugging Face folder `out` (created if
// missing) in dtype `type`; `config` is the model's config.json object;
// `tokenizer_from` the folder whose tokenizer files are copied (none if empty).
inline void save_pretrained(const std::filesystem::path& out, nlohmann::json config, const std::vector<models::weight_spec>& specs,
                            std::string_view prefix, const cpu::named_arrays& weights, dtype type,
                            const std::filesystem::path& tokenizer_from = {}) {
    namespace fs = std::filesystem;
    const auto dtype_name = torch_dtype_name(type);
    std::error_code ec;
    fs::create_directories(out, ec);
    if (ec) throw error(out.string() + ": cannot make the folder (" + ec.message() + ")");
    std::map<std::string, const cpu::array*> by_name;
    for (const auto& [n, a] : weights) by_name[n] = &a;
    std::vector<cpu::array> converted;  // those not already in `type`
    converted.reserve(specs.size());
    std::vector<io::tensor_to_write> tensors;
    for (const auto& s : specs) {
        const auto it = by_name.find(s.name);
        if (it == by_name.end()) throw error("save: weight " + s.name + " is missing");
        const auto& a = *it->second;
        if (a.dims() != s.dims)
            throw error("save: weight " + s.name + " is " + to_string(a.dims()) + ", the model's is " + to_string(s.dims) +
                        " (a rank's part? save whole weights)");
        const cpu::array* src = &a;
        if (a.type() != type) {
            converted.push_back(cpu::array::uninitialized(type, a.dims()));
            detail::convert_floats(a.type(), a.data(), type, converted.back().mutable_data(), a.size());
            src = &converted.back();
        }
        const auto stored_name = s.name.starts_with("lm_head.") ? s.name : std::string(prefix) + s.name;
        tensors.push_back({stored_name, type, s.stored, {src->data(), src->bytes()}});
    }
    io::write_safetensors(out / "model.safetensors", tensors, {{"format", "pt"}});
    if (!config.is_object()) throw error("save: the config must be a JSON object");
    config[config.contains("dtype") ? "dtype" : "torch_dtype"] = dtype_name;
    io::write_text(out / "config.json", config.dump(2) + "\n");
    if (tokenizer_from.empty() || fs::equivalent(tokenizer_from, out, ec)) return;
    for (const auto& n : tokenizer_files()) {
        const auto from = tokenizer_from / n;
        if (!fs::is_regular_file(from, ec)) continue;
        io::write_text(out / n, io::read_text(from, io::tokenizer_file_limit, "the tokenizer's " + n));
    }
}

// The same for a family: its weight list for `c` and its names' prefix.
template <class Family>
void save_pretrained(const std::filesystem::path& out, const nlohmann::json& config_json, const typename Family::config& c,
                     const cpu::named_arrays& weights, dtype type, const std::filesystem::path& tokenizer_from = {}) {
    save_pretrained(out, config_json, Family::weights(c), Family::prefix, weights, type, tokenizer_from);
}

}  // namespace scribe::runtime
