// scribe/models/opt_config.hpp — OPT's config.json and what it implies, without
// the DSL; models/opt.hpp declares the weights and builds the graphs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"

namespace scribe::models::opt {

// OPT's learned position table has two rows before position 0 (Hugging Face's
// OPTLearnedPositionalEmbedding offset).
inline constexpr std::int64_t position_offset = 2;

struct config : decoder_config {
    std::int64_t hidden_size = 0, n_head = 0, ffn_dim = 0;
    std::int64_t word_embed_proj_dim = 0;  // the embedding's width; project_in/out when not hidden_size
    bool layer_norm_before = true;         // pre-LN (most sizes) or post-LN (350m)
    bool final_layer_norm = true;
    std::string activation = "relu";

    std::int64_t head_dim() const { return hidden_size / n_head; }
    bool projected() const { return word_embed_proj_dim != hidden_size; }

    static config parse(const nlohmann::json& j, const std::string& source) {
        const config_reader r(j, source);
        r.model_type({"opt"}, "OPT");
        config c;
        r.common(c, {"max_position_embeddings"}, {"num_hidden_layers"});
        c.initializer_range = r.positive("init_std", c.initializer_range);
        c.dropout = {.embedding = 0.0, .attention = r.fraction("attention_dropout", 0.0), .residual = r.fraction("dropout", 0.1)};
        if (r.fraction("layerdrop", 0.0) > 0) r.fail("layerdrop " + io::shown(r.raw("layerdrop")) + " is not supported (every layer runs)");
        c.padding_idx = r.padding_row(c.vocab_size);
        c.hidden_size = r.integer("hidden_size");
        c.n_head = r.integer("num_attention_heads");
        r.divides("hidden_size", c.hidden_size, "num_attention_heads", c.n_head);
        c.ffn_dim = r.integer("ffn_dim");
        c.word_embed_proj_dim = r.integer("word_embed_proj_dim", c.hidden_size);
        c.layer_norm_before = r.boolean("do_layer_norm_before", true);
        c.final_layer_norm = c.layer_norm_before && !r.boolean("_remove_final_layer_norm", false);
        c.activation = r.choice("activation_function", c.activation,
                                {"relu", "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "silu", "swish"});
        r.only("enable_bias", true, "the projections have biases");
        r.only("layer_norm_elementwise_affine", true, "the layer norms have weights and biases");
        r.only("tie_word_embeddings", true, "the LM head is embed_tokens");
        return c;
    }

    static config load(const std::filesystem::path& file) { return load_config<config>(file); }
};

inline void check_tp(const config& c, std::int64_t degree) {
    const parallel::mesh m{.degree = degree};
    (void)m.shard("num_attention_heads", c.n_head);
    (void)m.shard("ffn_dim", c.ffn_dim);
}

inline std::vector<shape> cache_shapes(const config& c, std::int64_t batch, std::int64_t capacity, std::int64_t degree) {
    return kv_cache_shapes(c.n_layer, c.n_head, c.head_dim(), batch, capacity, degree);
}

// A tied LM head saved anyway.
inline bool ignored_tensor(const std::string& name) { return name == "lm_head.weight"; }

}  // namespace scribe::models::opt
