// scribe/models/opt_config.hpp — OPT's config.json and its weight list, without
// the DSL; models/opt.hpp builds the graphs.
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

// Every weight, in the order the graphs create their parameters, and how each is
// split over the ranks. nn.Linear weights are [out, in].
inline std::vector<weight_spec> weights(const config& c, std::int64_t /*degree*/ = 1) {
    const auto H = c.hidden_size, F = c.ffn_dim, N = c.n_head, D = c.head_dim(), V = c.vocab_size, P = c.word_embed_proj_dim;
    auto d = [](const char* n, std::int64_t e) { return dim_extent{n, e}; };
    std::vector<weight_spec> w = {
        {"decoder.embed_tokens.weight", {V, P}, {d("vocab", V), d("embed", P)}, "vocab"},
        {"decoder.embed_positions.weight", {c.n_positions + position_offset, H},
         {d("positions", c.n_positions + position_offset), d("hidden", H)}},
    };
    if (c.projected()) w.push_back({"decoder.project_in.weight", {H, P}, {d("hidden", H), d("embed", P)}});
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        const auto p = "decoder.layers." + std::to_string(l) + ".";
        for (const char* x : {"q_proj", "k_proj", "v_proj"}) {
            w.push_back({p + "self_attn." + x + ".weight", {H, H}, {d("heads", N), d("head_dim", D), d("hidden", H)}, "heads"});
            w.push_back({p + "self_attn." + x + ".bias", {H}, {d("heads", N), d("head_dim", D)}, "heads"});
        }
        w.push_back({p + "self_attn.out_proj.weight", {H, H}, {d("hidden", H), d("heads", N), d("head_dim", D)}, "heads"});
        w.push_back({p + "self_attn.out_proj.bias", {H}, {d("hidden", H)}});
        w.push_back({p + "self_attn_layer_norm.weight", {H}, {d("hidden", H)}});
        w.push_back({p + "self_attn_layer_norm.bias", {H}, {d("hidden", H)}});
        w.push_back({p + "fc1.weight", {F, H}, {d("ffn", F), d("hidden", H)}, "ffn"});
        w.push_back({p + "fc1.bias", {F}, {d("ffn", F)}, "ffn"});
        w.push_back({p + "fc2.weight", {H, F}, {d("hidden", H), d("ffn", F)}, "ffn"});
        w.push_back({p + "fc2.bias", {H}, {d("hidden", H)}});
        w.push_back({p + "final_layer_norm.weight", {H}, {d("hidden", H)}});
        w.push_back({p + "final_layer_norm.bias", {H}, {d("hidden", H)}});
    }
    if (c.final_layer_norm) {
        w.push_back({"decoder.final_layer_norm.weight", {H}, {d("hidden", H)}});
        w.push_back({"decoder.final_layer_norm.bias", {H}, {d("hidden", H)}});
    }
    if (c.projected()) w.push_back({"decoder.project_out.weight", {P, H}, {d("embed", P), d("hidden", H)}});
    return w;
}

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
