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
#include "declare.hpp"
#include "opt_config.hpp"

namespace scribe::models::opt {

SCRIBE_DIM(embed);  // the token embedding's width (word_embed_proj_dim)

// Declares every weight (models/declare.hpp) and binds the dims they use for one
// rank of mesh m. nn.Linear weights are [out, in].
template <DtypeTag T>
auto declare(declaration d, const config& c, const parallel::mesh& m) {
    using namespace nn;
    d.graph().bind(hidden(c.hidden_size), embed(c.word_embed_proj_dim), heads(m.shard("num_attention_heads", c.n_head)),
                   head_dim(c.head_dim()), ffn(m.shard("ffn_dim", c.ffn_dim)), vocab(m.padded(c.vocab_size) / m.degree),
                   positions(c.n_positions + position_offset));
    const T t{};
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
    struct weights {
        tensor_of<T{}[vocab, embed]> table;
        tensor_of<T{}[positions, hidden]> wpe;
        std::optional<tensor_of<T{}[hidden, embed]>> project_in;
        std::vector<layer> layers;
        std::optional<tensor_of<T{}[hidden]>> ln_f_g, ln_f_b;
        std::optional<tensor_of<T{}[embed, hidden]>> project_out;
    };
    auto table = d(t[vocab, embed], "decoder.embed_tokens.weight", {.split = "vocab", .init = {.zero_row = c.padding_idx}});
    auto wpe = d(t[positions, hidden], "decoder.embed_positions.weight");
    decltype(weights::project_in) project_in;
    if (c.projected()) project_in = d(t[hidden, embed], "decoder.project_in.weight");
    std::vector<layer> layers;
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        const auto p = "decoder.layers." + std::to_string(l) + ".";
        auto proj = [&](const char* x) {
            auto w = d(t[heads, head_dim, hidden], p + "self_attn." + x + ".weight", {.split = "heads", .stored = {2, 1}});
            return std::pair{w, d(t[heads, head_dim], p + "self_attn." + x + ".bias", {.split = "heads", .stored = {2}, .init = zeros})};
        };
        auto [wq, bq] = proj("q_proj");
        auto [wk, bk] = proj("k_proj");
        auto [wv, bv] = proj("v_proj");
        auto wo = d(t[hidden, heads, head_dim], p + "self_attn.out_proj.weight", {.split = "heads", .stored = {1, 2}});
        auto bo = d(t[hidden], p + "self_attn.out_proj.bias", {.init = zeros});
        auto ln1_g = d(t[hidden], p + "self_attn_layer_norm.weight", {.init = ones});
        auto ln1_b = d(t[hidden], p + "self_attn_layer_norm.bias", {.init = zeros});
        auto fc1 = d(t[ffn, hidden], p + "fc1.weight", {.split = "ffn"});
        auto b1 = d(t[ffn], p + "fc1.bias", {.split = "ffn", .init = zeros});
        auto fc2 = d(t[hidden, ffn], p + "fc2.weight", {.split = "ffn"});
        auto b2 = d(t[hidden], p + "fc2.bias", {.init = zeros});
        auto ln2_g = d(t[hidden], p + "final_layer_norm.weight", {.init = ones});
        auto ln2_b = d(t[hidden], p + "final_layer_norm.bias", {.init = zeros});
        layers.push_back({wq, bq, wk, bk, wv, bv, wo, bo, ln1_g, ln1_b, fc1, b1, fc2, b2, ln2_g, ln2_b});
    }
    decltype(weights::ln_f_g) ln_f_g, ln_f_b;
    if (c.final_layer_norm) {
        ln_f_g = d(t[hidden], "decoder.final_layer_norm.weight", {.init = ones});
        ln_f_b = d(t[hidden], "decoder.final_layer_norm.bias", {.init = zeros});
    }
    decltype(weights::project_out) project_out;
    if (c.projected()) project_out = d(t[embed, hidden], "decoder.project_out.weight");
    return weights{table, wpe, project_in, std::move(layers), ln_f_g, ln_f_b, project_out};
}

// Every weight, in the order the graphs create their parameters, and how each is
// split over the ranks.
inline std::vector<weight_spec> weights(const config& c, std::int64_t degree = 1) {
    return list_weights(degree, c, declare<dtype_of<f32>>);
}

template <auto Dtype>
void build(graph& g, const config& c, const graph_shape& s) {
    using namespace nn;
    using T = std::remove_cvref_t<decltype(Dtype)>;
    const parallel::mesh m{.degree = s.tp, .replicas = s.dp};
    const auto all = declare<T>(declaration(g, s.weights), c, m);
    const auto& project_in = all.project_in;
    const auto& project_out = all.project_out;

    step<T> st(g, s, c.n_layer, {.n_head = c.n_head, .n_kv_head = c.n_head, .head_dim = c.head_dim(), .dropout = c.dropout.attention});
    auto tokens = st.token_rows(parallel::embedding<embed>(all.table, st.ids(), m), c.padding_idx);
    auto x = (project_in ? linear<embed>(tokens, *project_in) : rename<embed, hidden>(tokens)) +
             position_embedding(all.wpe, st.positions() + position_offset);
    auto norm = [&](const auto& v, const auto& gamma, const auto& beta) {
        return std::remove_cvref_t<decltype(v)>(layer_norm<hidden>(v, gamma, beta, 1e-5));
    };
    auto layer = [&](const auto& x, const auto& w, auto rows) {
        auto h = c.layer_norm_before ? norm(x, w.ln1_g, w.ln1_b) : x;
        auto ctx = st.attend(parallel::column_linear<hidden>(h, w.wq, w.bq, m),
                             rename<heads, kv_heads>(parallel::column_linear<hidden>(h, w.wk, w.bk, m)),
                             rename<heads, kv_heads>(parallel::column_linear<hidden>(h, w.wv, w.bv, m)));
        using R = decltype(rows(x));
        R r = rows(x) + st.dropout(parallel::row_linear<heads, head_dim>(rows(ctx), w.wo, w.bo, m), c.dropout.residual);
        if (!c.layer_norm_before) r = norm(r, w.ln1_g, w.ln1_b);
        auto h2 = c.layer_norm_before ? norm(r, w.ln2_g, w.ln2_b) : r;
        r = r + st.dropout(parallel::mlp(h2, w.fc1, w.b1, w.fc2, w.b2, [&](const auto& u) { return activation(u, c.activation); }, m),
                           c.dropout.residual);
        if (!c.layer_norm_before) r = norm(r, w.ln2_g, w.ln2_b);
        return r;
    };
    st.layers(x, all.layers, layer, [&](const auto& x) {
        auto f = all.ln_f_g ? norm(x, *all.ln_f_g, *all.ln_f_b) : x;
        auto e = project_out ? linear<hidden>(f, *project_out) : rename<hidden, embed>(f);
        return parallel::lm_head<embed>(e, all.table, c.vocab_size, m);
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
