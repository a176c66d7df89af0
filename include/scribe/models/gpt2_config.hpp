// scribe/models/gpt2_config.hpp — GPT-2's config.json, checked, and what it
// implies (tensor-parallel degrees, cache shapes), without the DSL;
// models/gpt2.hpp declares the weights and builds the graphs.
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
        c.initializer_range = r.positive("initializer_range", c.initializer_range);
        c.dropout = {.embedding = r.fraction("embd_pdrop", 0.1), .attention = r.fraction("attn_pdrop", 0.1),
                     .residual = r.fraction("resid_pdrop", 0.1)};
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
