// scribe/models/gptj_config.hpp — GPT-J's config.json and what it implies,
// without the DSL; models/gptj.hpp declares the weights and builds the graphs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"

namespace scribe::models::gptj {

struct config : decoder_config {
    std::int64_t n_embd = 0, n_head = 0, n_inner = 0;
    std::string activation = "gelu_new";
    double layer_norm_epsilon = 1e-5;
    models::rope rope{};

    std::int64_t head_dim() const { return n_embd / n_head; }

    static config parse(const nlohmann::json& j, const std::string& source) {
        const config_reader r(j, source);
        r.model_type({"gptj"}, "GPT-J");
        config c;
        r.common(c, {"n_positions"}, {"n_layer"});
        c.initializer_range = r.positive("initializer_range", c.initializer_range);
        c.dropout = {.embedding = r.fraction("embd_pdrop", 0.0), .attention = r.fraction("attn_pdrop", 0.0),
                     .residual = r.fraction("resid_pdrop", 0.0)};
        c.n_embd = r.integer("n_embd");
        c.n_head = r.integer("n_head");
        r.divides("n_embd", c.n_embd, "n_head", c.n_head);
        c.n_inner = r.integer("n_inner", 4 * c.n_embd);
        c.activation = r.choice("activation_function", c.activation,
                                {"gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu", "relu", "silu", "swish"});
        c.layer_norm_epsilon = r.positive("layer_norm_epsilon", c.layer_norm_epsilon);
        r.only("tie_word_embeddings", false, "GPT-J's LM head is a weight of its own, with a bias");
        const auto dims = r.integer("rotary_dim", c.head_dim());
        if (dims > c.head_dim() || dims % 2)
            r.fail("rotary_dim " + std::to_string(dims) + " must be even and at most the head's " + std::to_string(c.head_dim()) +
                   " dims");
        c.rope = rope::read(r, dims, rope::layout::interleaved);
        return c;
    }

    static config load(const std::filesystem::path& file) { return load_config<config>(file); }
};

inline void check_tp(const config& c, std::int64_t degree) {
    const parallel::mesh m{.degree = degree};
    (void)m.shard("n_head", c.n_head);
    (void)m.shard("n_inner", c.n_inner);
}

inline std::vector<shape> cache_shapes(const config& c, std::int64_t batch, std::int64_t capacity, std::int64_t degree) {
    return kv_cache_shapes(c.n_layer, c.n_head, c.head_dim(), batch, capacity, degree);
}

// The causal-mask buffers older checkpoints saved.
inline bool ignored_tensor(const std::string& name) {
    return name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias");
}

}  // namespace scribe::models::gptj
