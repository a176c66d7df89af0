// scribe/models/gptj_config.hpp — GPT-J's config.json and its weight list,
// without the DSL; models/gptj.hpp builds the graphs.
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

// Every weight, in the order the graphs create their parameters, and how each is
// split over the ranks. nn.Linear weights are [out, in].
inline std::vector<weight_spec> weights(const config& c, std::int64_t /*degree*/ = 1) {
    const auto H = c.n_embd, F = c.n_inner, N = c.n_head, D = c.head_dim(), V = c.vocab_size;
    auto d = [](const char* n, std::int64_t e) { return dim_extent{n, e}; };
    std::vector<weight_spec> w = {{"wte.weight", {V, H}, {d("vocab", V), d("hidden", H)}, "vocab"}};
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        const auto p = "h." + std::to_string(l) + ".";
        w.push_back({p + "ln_1.weight", {H}, {d("hidden", H)}});
        w.push_back({p + "ln_1.bias", {H}, {d("hidden", H)}});
        for (const char* x : {"q_proj", "k_proj", "v_proj"})
            w.push_back({p + "attn." + x + ".weight", {H, H}, {d("heads", N), d("head_dim", D), d("hidden", H)}, "heads"});
        w.push_back({p + "attn.out_proj.weight", {H, H}, {d("hidden", H), d("heads", N), d("head_dim", D)}, "heads"});
        w.push_back({p + "mlp.fc_in.weight", {F, H}, {d("ffn", F), d("hidden", H)}, "ffn"});
        w.push_back({p + "mlp.fc_in.bias", {F}, {d("ffn", F)}, "ffn"});
        w.push_back({p + "mlp.fc_out.weight", {H, F}, {d("hidden", H), d("ffn", F)}, "ffn"});
        w.push_back({p + "mlp.fc_out.bias", {H}, {d("hidden", H)}});
    }
    w.push_back({"ln_f.weight", {H}, {d("hidden", H)}});
    w.push_back({"ln_f.bias", {H}, {d("hidden", H)}});
    w.push_back({"lm_head.weight", {V, H}, {d("vocab", V), d("hidden", H)}, "vocab"});
    w.push_back({"lm_head.bias", {V}, {d("vocab", V)}, "vocab"});
    return w;
}

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
