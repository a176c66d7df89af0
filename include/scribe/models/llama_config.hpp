// scribe/models/llama_config.hpp — LLaMA's config.json (Llama 2 and 3, and
// Mistral, whose checkpoints name their weights alike) and what it implies,
// without the DSL; models/llama.hpp declares the weights and builds the graphs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"

namespace scribe::models::llama {

struct config : decoder_config {
    std::string model_type = "llama";
    std::int64_t hidden_size = 0, intermediate_size = 0, n_head = 0, n_kv_head = 0, head_dim = 0;
    double rms_norm_eps = 1e-6;
    bool tie_word_embeddings = false;
    bool attention_bias = false;  // q, k, v and o projections with biases
    std::int64_t sliding_window = 0;  // Mistral: a query sees this many positions up to itself; 0: all
    models::rope rope{};

    static config parse(const nlohmann::json& j, const std::string& source) {
        const config_reader r(j, source);
        r.model_type({"llama", "mistral"}, "LLaMA");
        config c;
        if (r.has("model_type")) c.model_type = j["model_type"].get<std::string>();
        r.common(c, {"max_position_embeddings"}, {"num_hidden_layers"});
        c.initializer_range = r.positive("initializer_range", c.initializer_range);
        c.dropout = {.embedding = 0.0, .attention = r.fraction("attention_dropout", 0.0), .residual = 0.0};
        c.padding_idx = r.padding_row(c.vocab_size);
        c.hidden_size = r.integer("hidden_size");
        c.intermediate_size = r.integer("intermediate_size");
        c.n_head = r.integer("num_attention_heads");
        c.n_kv_head = r.integer("num_key_value_heads", c.n_head);
        r.divides("num_attention_heads", c.n_head, "num_key_value_heads", c.n_kv_head);
        if (!r.has("head_dim")) r.divides("hidden_size", c.hidden_size, "num_attention_heads", c.n_head);
        c.head_dim = r.integer("head_dim", c.hidden_size / c.n_head);
        if (c.head_dim % 2) r.fail("head_dim " + std::to_string(c.head_dim) + " must be even for rotary embeddings");
        c.rms_norm_eps = r.positive("rms_norm_eps", c.rms_norm_eps);
        (void)r.choice("hidden_act", "silu", {"silu"});
        c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
        c.attention_bias = r.boolean("attention_bias", false);
        r.only("mlp_bias", false, "the MLP's projections have no biases");
        if (r.has("partial_rotary_factor") && r.raw("partial_rotary_factor") != 1.0 && r.raw("partial_rotary_factor") != 1)
            r.fail("partial_rotary_factor " + io::shown(r.raw("partial_rotary_factor")) + " is not supported (every dim of a head rotates)");
        c.rope = rope::read(r, c.head_dim, rope::layout::half);
        if (r.has("sliding_window") && r.boolean("use_sliding_window", true)) {
            c.sliding_window = r.integer("sliding_window");
            if (c.sliding_window >= c.n_positions) c.sliding_window = 0;  // never reached
        }
        return c;
    }

    static config load(const std::filesystem::path& file) { return load_config<config>(file); }
};

// The degree must divide the query heads and the MLP's width; the key/value heads
// are split when it divides them and replicated otherwise.
inline void check_tp(const config& c, std::int64_t degree) {
    const parallel::mesh m{.degree = degree};
    (void)m.shard("num_attention_heads", c.n_head);
    (void)m.shard("intermediate_size", c.intermediate_size);
}

inline std::vector<shape> cache_shapes(const config& c, std::int64_t batch, std::int64_t capacity, std::int64_t degree) {
    return kv_cache_shapes(c.n_layer, c.n_kv_head, c.head_dim, batch, capacity, degree);
}

// Tensors a checkpoint may hold that the model does not read: the rotary
// frequencies older checkpoints saved, and a tied LM head.
inline bool ignored_tensor(const std::string& name) {
    return name.ends_with("rotary_emb.inv_freq") || name == "lm_head.weight";
}

}  // namespace scribe::models::llama
