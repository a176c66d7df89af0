// scribe/models/opt.hpp — OPT: learned positions offset by two rows, LayerNorm
// before each block (pre-LN) or after it (post-LN, as OPT-350m), ReLU, separate
// q/k/v projections with biases, and an embedding narrower than the model
// (word_embed_proj_dim) with projections in and out. The LM head is the token
// embedding. The rest is the shared blocks (models/blocks.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "blocks.hpp"
#include "opt_config.hpp"

namespace scribe::models::opt {

SCRIBE_DIM(embed);  // the token embedding's width (word_embed_proj_dim)

template <auto Dtype>
void build(graph& g, const config& c, const graph_shape& s) {
    using namespace nn;
    using T = std::remove_cvref_t<decltype(Dtype)>;
    const parallel::mesh m{.degree = s.tp};
    g.bind(hidden(c.hidden_size), embed(c.word_embed_proj_dim), heads(m.shard("num_attention_heads", c.n_head)),
           head_dim(c.head_dim()), ffn(m.shard("ffn_dim", c.ffn_dim)), vocab(m.padded(c.vocab_size) / m.degree),
           positions(c.n_positions + position_offset));
    const T t{};
    auto table = g.parameter(t[vocab, embed], "decoder.embed_tokens.weight");
    auto wpe = g.parameter(t[positions, hidden], "decoder.embed_positions.weight");
    std::optional<tensor_of<T{}[hidden, embed]>> project_in;
    if (c.projected()) project_in = g.parameter(t[hidden, embed], "decoder.project_in.weight");
    struct layer {
        tensor_of<T{}[heads, head_dim, hidden]> wq;
        tensor_of<T{}[heads, head_dim]> bq;
        tensor_of<T{}[heads, head_dim, hidden]> wk;
        tensor_of<T{}[heads, head_dim]> bk;
        tensor_of<T{}[heads, head_dim, hidden]> wv;
        tensor_of<T{}[heads, head_dim]> bv;
        tensor_of<T{}[hidden, heads, head_dim]> wo;
        tensor_of<T{}[hidden]> bo, ln1_g, ln1_b;
        tensor_of<T{}[ffn, hidden]> fc1;
        tensor_of<T{}[ffn]> b1;
        tensor_of<T{}[hidden, ffn]> fc2;
        tensor_of<T{}[hidden]> b2, ln2_g, ln2_b;
    };
    std::vector<layer> layers;
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        const auto p = "decoder.layers." + std::to_string(l) + ".";
        auto proj = [&](const char* x) {
            auto w = g.parameter(t[heads, head_dim, hidden], p + "self_attn." + x + ".weight");
            return std::pair{w, g.parameter(t[heads, head_dim], p + "self_attn." + x + ".bias")};
        };
        auto [wq, bq] = proj("q_proj");
        auto [wk, bk] = proj("k_proj");
        auto [wv, bv] = proj("v_proj");
        auto wo = g.parameter(t[hidden, heads, head_dim], p + "self_attn.out_proj.weight");
        auto bo = g.parameter(t[hidden], p + "self_attn.out_proj.bias");
        auto ln1_g = g.parameter(t[hidden], p + "self_attn_layer_norm.weight");
        auto ln1_b = g.parameter(t[hidden], p + "self_attn_layer_norm.bias");
        auto fc1 = g.parameter(t[ffn, hidden], p + "fc1.weight");
        auto b1 = g.parameter(t[ffn], p + "fc1.bias");
        auto fc2 = g.parameter(t[hidden, ffn], p + "fc2.weight");
        auto b2 = g.parameter(t[hidden], p + "fc2.bias");
        auto ln2_g = g.parameter(t[hidden], p + "final_layer_norm.weight");
        auto ln2_b = g.parameter(t[hidden], p + "final_layer_norm.bias");
        layers.push_back({wq, bq, wk, bk, wv, bv, wo, bo, ln1_g, ln1_b, fc1, b1, fc2, b2, ln2_g, ln2_b});
    }
    std::optional<tensor_of<T{}[hidden]>> ln_f_g, ln_f_b;
    if (c.final_layer_norm) {
        ln_f_g = g.parameter(t[hidden], "decoder.final_layer_norm.weight");
        ln_f_b = g.parameter(t[hidden], "decoder.final_layer_norm.bias");
    }
    std::optional<tensor_of<T{}[embed, hidden]>> project_out;
    if (c.projected()) project_out = g.parameter(t[embed, hidden], "decoder.project_out.weight");

    step<T> st(g, s, c.n_layer, {.n_head = c.n_head, .n_kv_head = c.n_head, .head_dim = c.head_dim()});
    auto tokens = st.token_rows(parallel::embedding<embed>(table, st.ids(), m), c.padding_idx);
    auto x = (project_in ? linear<embed>(tokens, *project_in) : rename<embed, hidden>(tokens)) +
             position_embedding(wpe, st.positions() + position_offset);
    using X = decltype(x);
    auto norm = [&](const X& v, const auto& gamma, const auto& beta) { return X(layer_norm<hidden>(v, gamma, beta, 1e-5)); };
    for (const auto& w : layers) {
        auto h = c.layer_norm_before ? norm(x, w.ln1_g, w.ln1_b) : x;
        auto ctx = st.attend(parallel::column_linear<hidden>(h, w.wq, w.bq, m),
                             rename<heads, kv_heads>(parallel::column_linear<hidden>(h, w.wk, w.bk, m)),
                             rename<heads, kv_heads>(parallel::column_linear<hidden>(h, w.wv, w.bv, m)));
        x = x + parallel::row_linear<heads, head_dim>(ctx, w.wo, w.bo, m);
        if (!c.layer_norm_before) x = norm(x, w.ln1_g, w.ln1_b);
        auto h2 = c.layer_norm_before ? norm(x, w.ln2_g, w.ln2_b) : x;
        x = x + parallel::mlp(h2, w.fc1, w.b1, w.fc2, w.b2, [&](const auto& u) { return activation(u, c.activation); }, m);
        if (!c.layer_norm_before) x = norm(x, w.ln2_g, w.ln2_b);
    }
    if (ln_f_g) x = norm(x, *ln_f_g, *ln_f_b);
    st.finish(x, [&](const auto& h) {
        auto e = project_out ? linear<hidden>(h, *project_out) : rename<hidden, embed>(h);
        return parallel::lm_head<embed>(e, table, c.vocab_size, m);
    });
}

}  // namespace scribe::models::opt

namespace scribe::models {

// OPT as a model family for runtime::decoder.
struct opt_family {
    static constexpr const char* name = "OPT";
    using config = opt::config;
    using graph_shape = models::graph_shape;
    static constexpr const char* prefix = "model.";  // OPTForCausalLM's names; OPTModel's have none
    static std::vector<weight_spec> weights(const config& c, std::int64_t degree = 1) { return opt::weights(c, degree); }
    static bool ignored_tensor(const std::string& n) { return opt::ignored_tensor(n); }
    static void check_tp(const config& c, std::int64_t degree) { opt::check_tp(c, degree); }
    static std::vector<shape> cache_shapes(const config& c, std::int64_t batch, std::int64_t capacity, std::int64_t degree) {
        return opt::cache_shapes(c, batch, capacity, degree);
    }
    static std::string summary(const config& c) {
        return "OPT, " + std::to_string(c.n_layer) + " layers, hidden " + std::to_string(c.hidden_size) + ", " +
               std::to_string(c.n_head) + " heads of " + std::to_string(c.head_dim()) + ", ffn " + std::to_string(c.ffn_dim) +
               ", vocab " + std::to_string(c.vocab_size) + ", " + std::to_string(c.n_positions) + " positions, " + c.activation +
               (c.layer_norm_before ? ", pre-LN" : ", post-LN") +
               (c.projected() ? ", embedding " + std::to_string(c.word_embed_proj_dim) + " projected" : std::string());
    }
    static std::string tp_rule(const config& c) {
        return "they divide num_attention_heads " + std::to_string(c.n_head) + " and ffn_dim " + std::to_string(c.ffn_dim);
    }
    template <auto Dtype>
    static void build(graph& g, const config& c, const graph_shape& s) {
        opt::build<Dtype>(g, c, s);
    }
};

}  // namespace scribe::models
