// scribe/models/gpt2_config.hpp — GPT-2's config.json and its weight list: what a
// checkpoint must hold, without the DSL (the loader, `scribe inspect` and the
// config fuzzer use it; models/gpt2.hpp builds the graphs).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"

namespace scribe::models::gpt2 {

using models::graph_shape;
using models::weight_spec;

// What GPT-2's config.json says, checked.
struct config : decoder_config {
    std::int64_t n_embd = 0, n_head = 0, n_inner = 0;
    std::string activation = "gelu_new";
    double layer_norm_epsilon = 1e-5;

    std::int64_t head_dim() const { return n_embd / n_head; }

    // Reads a config object; `source` names it in errors (the file's path).
    static config parse(const nlohmann::json& j, const std::string& source) {
        const config_reader r(j, source);
        r.model_type({"gpt2"}, "GPT-2");
        config c;
        r.common(c, {"n_positions"}, {"n_layer"});
        c.n_embd = r.integer("n_embd");
        c.n_head = r.integer("n_head");
        c.n_inner = r.integer("n_inner", 4 * c.n_embd);
        r.divides("n_embd", c.n_embd, "n_head", c.n_head);
        c.activation = r.choice("activation_function", c.activation,
                                {"gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu", "relu", "silu", "swish"});
        c.layer_norm_epsilon = r.positive("layer_norm_epsilon", c.layer_norm_epsilon);
        r.only("scale_attn_weights", true, "attention scores are scaled by 1/sqrt(head_dim)");
        r.only("scale_attn_by_inverse_layer_idx", false, "no per-layer score scaling");
        r.only("reorder_and_upcast_attn", false, "scores are computed in the model's dtype");
        r.only("add_cross_attention", false, "decoder-only");
        r.only("tie_word_embeddings", true, "the LM head is wte");
        return c;
    }

    static config load(const std::filesystem::path& file) { return load_config<config>(file); }
};

// Every weight GPT-2 has, in the order the graphs create their parameters, and
// how each is split over `degree` tensor-parallel ranks.
inline std::vector<weight_spec> weights(const config& c, std::int64_t /*degree*/ = 1) {
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
    return kv_cache_shapes(c.n_layer, c.n_head, c.head_dim(), batch, capacity, degree);
}

// Tensors a GPT-2 checkpoint may hold that the model does not read: the causal
// mask buffers older transformers versions saved, and a tied LM head.
inline bool ignored_tensor(const std::string& name) {
    auto ends = [&](const std::string& s) { return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
    return ends(".attn.bias") || ends(".attn.masked_bias") || name == "lm_head.weight";
}

}  // namespace scribe::models::gpt2
