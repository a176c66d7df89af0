// scribe/models/gpt2_config.hpp — GPT-2's config.json and its weight list: what a
// checkpoint must hold, without the DSL (the loader, `scribe inspect` and the
// config fuzzer use it; models/gpt2.hpp builds the graphs).
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../graph/node.hpp"
#include "../parallel/mesh.hpp"

namespace scribe::models::gpt2 {

// What GPT-2's config.json says, checked.
struct config {
    std::int64_t vocab_size = 0, n_positions = 0, n_embd = 0, n_layer = 0, n_head = 0, n_inner = 0;
    std::string activation = "gelu_new";
    double layer_norm_epsilon = 1e-5;
    std::optional<std::int32_t> bos_token_id, eos_token_id;

    std::int64_t head_dim() const { return n_embd / n_head; }

    // Reads a config object; `source` names it in errors (the file's path).
    static config parse(const nlohmann::json& j, const std::string& source) {
        auto fail = [&](const std::string& what) -> void { throw error(source + ": " + what); };
        if (!j.is_object()) fail("not a JSON object");
        if (j.contains("model_type") && j["model_type"] != "gpt2")
            fail("model_type is " + j["model_type"].dump() + ", this loader reads \"gpt2\"");
        auto integer = [&](const char* key, std::optional<std::int64_t> fallback = std::nullopt) -> std::int64_t {
            if (!j.contains(key) || j[key].is_null()) {
                if (fallback) return *fallback;
                fail("missing field `" + std::string(key) + "`");
            }
            const auto& v = j[key];
            if (!v.is_number_integer() || v.get<std::int64_t>() <= 0)
                fail("field `" + std::string(key) + "` must be a positive integer, got " + v.dump());
            return v.get<std::int64_t>();
        };
        config c;
        c.vocab_size = integer("vocab_size");
        c.n_positions = integer("n_positions");
        c.n_embd = integer("n_embd");
        c.n_layer = integer("n_layer");
        c.n_head = integer("n_head");
        c.n_inner = integer("n_inner", 4 * c.n_embd);
        if (c.n_embd % c.n_head)
            fail("n_embd " + std::to_string(c.n_embd) + " is not divisible by n_head " + std::to_string(c.n_head));
        if (j.contains("activation_function")) {
            if (!j["activation_function"].is_string()) fail("field `activation_function` must be a string");
            c.activation = j["activation_function"].get<std::string>();
        }
        static const char* known[] = {"gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu", "relu", "silu", "swish"};
        if (std::find(std::begin(known), std::end(known), c.activation) == std::end(known))
            fail("activation_function \"" + c.activation +
                 "\" is not supported (gelu_new, gelu_pytorch_tanh, gelu_fast, gelu, relu, silu)");
        if (j.contains("layer_norm_epsilon")) {
            if (!j["layer_norm_epsilon"].is_number() || j["layer_norm_epsilon"].get<double>() <= 0)
                fail("field `layer_norm_epsilon` must be a positive number, got " + j["layer_norm_epsilon"].dump());
            c.layer_norm_epsilon = j["layer_norm_epsilon"].get<double>();
        }
        auto flag = [&](const char* key, bool supported_value, const char* why) {
            if (j.contains(key) && j[key].is_boolean() && j[key].get<bool>() != supported_value)
                fail(std::string(key) + " = " + j[key].dump() + " is not supported (" + why + ")");
        };
        flag("scale_attn_weights", true, "attention scores are scaled by 1/sqrt(head_dim)");
        flag("scale_attn_by_inverse_layer_idx", false, "no per-layer score scaling");
        flag("reorder_and_upcast_attn", false, "scores are computed in the model's dtype");
        flag("add_cross_attention", false, "decoder-only");
        flag("tie_word_embeddings", true, "the LM head is wte");
        auto token = [&](const char* key) -> std::optional<std::int32_t> {
            if (!j.contains(key) || j[key].is_null()) return std::nullopt;
            if (!j[key].is_number_integer() || j[key].get<std::int64_t>() < 0 || j[key].get<std::int64_t>() >= c.vocab_size)
                fail("field `" + std::string(key) + "` must be a token id below vocab_size " +
                     std::to_string(c.vocab_size) + ", got " + j[key].dump());
            return static_cast<std::int32_t>(j[key].get<std::int64_t>());
        };
        c.bos_token_id = token("bos_token_id");
        c.eos_token_id = token("eos_token_id");
        return c;
    }

    static config load(const std::filesystem::path& file) {
        std::ifstream in(file);
        if (!in) throw error(file.string() + ": cannot open the model's config");
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(in);
        } catch (const nlohmann::json::exception& e) {
            throw error(file.string() + ": not valid JSON (" + e.what() + ")");
        }
        return parse(j, file.string());
    }
};

// One weight: its name in the checkpoint (without the optional "transformer."
// prefix), the shape the checkpoint stores, and the dims the graph reads it as.
// Under tensor parallelism the dimension `split` (empty: none, replicated) is
// divided over the ranks (parallel/weights.hpp cuts each rank's part).
struct weight_spec {
    std::string name;
    std::vector<std::int64_t> stored;
    shape dims;
    std::string split{};
};

// Every weight GPT-2 has, in the order the graphs create their parameters.
inline std::vector<weight_spec> weights(const config& c) {
    const auto H = c.n_embd, F = c.n_inner, N = c.n_head, D = c.head_dim();
    auto d = [](const char* n, std::int64_t e) { return dim_extent{n, e}; };
    std::vector<weight_spec> w = {
        {"wte.weight", {c.vocab_size, H}, {d("vocab", c.vocab_size), d("hidden", H)}, "vocab"},
        {"wpe.weight", {c.n_positions, H}, {d("positions", c.n_positions), d("hidden", H)}},
    };
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        const auto p = "h." + std::to_string(l) + ".";
        w.push_back({p + "ln_1.weight", {H}, {d("hidden", H)}});
        w.push_back({p + "ln_1.bias", {H}, {d("hidden", H)}});
        w.push_back({p + "attn.c_attn.weight", {H, 3 * H}, {d("hidden", H), d("qkv", 3), d("heads", N), d("head_dim", D)}, "heads"});
        w.push_back({p + "attn.c_attn.bias", {3 * H}, {d("qkv", 3), d("heads", N), d("head_dim", D)}, "heads"});
        w.push_back({p + "attn.c_proj.weight", {H, H}, {d("heads", N), d("head_dim", D), d("hidden", H)}, "heads"});
        w.push_back({p + "attn.c_proj.bias", {H}, {d("hidden", H)}});
        w.push_back({p + "ln_2.weight", {H}, {d("hidden", H)}});
        w.push_back({p + "ln_2.bias", {H}, {d("hidden", H)}});
        w.push_back({p + "mlp.c_fc.weight", {H, F}, {d("hidden", H), d("ffn", F)}, "ffn"});
        w.push_back({p + "mlp.c_fc.bias", {F}, {d("ffn", F)}, "ffn"});
        w.push_back({p + "mlp.c_proj.weight", {F, H}, {d("ffn", F), d("hidden", H)}, "ffn"});
        w.push_back({p + "mlp.c_proj.bias", {H}, {d("hidden", H)}});
    }
    w.push_back({"ln_f.weight", {H}, {d("hidden", H)}});
    w.push_back({"ln_f.bias", {H}, {d("hidden", H)}});
    return w;
}

// Refuses a tensor-parallel degree that does not divide the heads and the MLP's
// width (the vocabulary is padded instead), naming both sizes.
inline void check_tp(const config& c, std::int64_t degree) {
    const parallel::mesh m{.degree = degree};
    (void)m.shard("n_head", c.n_head);
    (void)m.shard("n_inner", c.n_inner);
}

// The KV cache one rank holds: a key and a value tensor per layer,
// [batch, cache, heads / degree, head_dim].
inline std::vector<shape> cache_shapes(const config& c, std::int64_t batch, std::int64_t capacity, std::int64_t degree) {
    const parallel::mesh m{.degree = degree};
    const shape one{{"batch", batch}, {"cache", capacity}, {"heads", m.shard("n_head", c.n_head)}, {"head_dim", c.head_dim()}};
    return std::vector<shape>(static_cast<std::size_t>(2 * c.n_layer), one);
}

// Tensors a GPT-2 checkpoint may hold that the model does not read: the causal
// mask buffers older transformers versions saved, and a tied LM head.
inline bool ignored_tensor(const std::string& name) {
    auto ends = [&](const std::string& s) { return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
    return ends(".attn.bias") || ends(".attn.masked_bias") || name == "lm_head.weight";
}

}  // namespace scribe::models::gpt2
