// scribe/models/gptj.hpp — GPT-J: attention and MLP side by side on one
// LayerNorm (the parallel residual), rotary embeddings on the first rotary_dim
// dims of each head in the interleaved layout, and an LM head with a bias. The
// rest is the shared blocks (models/blocks.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blocks.hpp"
#include "gptj_config.hpp"

namespace scribe::models::gptj {

template <auto Dtype>
void build(graph& g, const config& c, const graph_shape& s) {
    using namespace nn;
    using T = std::remove_cvref_t<decltype(Dtype)>;
    const parallel::mesh m{.degree = s.tp};
    g.bind(hidden(c.n_embd), heads(m.shard("n_head", c.n_head)), kv_heads(m.shard("n_head", c.n_head)),
           head_dim(c.head_dim()), ffn(m.shard("n_inner", c.n_inner)), vocab(m.padded(c.vocab_size) / m.degree));
    const T t{};
    auto wte = g.parameter(t[vocab, hidden], "wte.weight");
    struct layer {
        tensor_of<T{}[hidden]> ln_g, ln_b;
        tensor_of<T{}[heads, head_dim, hidden]> wq, wk, wv;
        tensor_of<T{}[hidden, heads, head_dim]> wo;
        tensor_of<T{}[ffn, hidden]> w_in;
        tensor_of<T{}[ffn]> b_in;
        tensor_of<T{}[hidden, ffn]> w_out;
        tensor_of<T{}[hidden]> b_out;
    };
    std::vector<layer> layers;
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        const auto p = "h." + std::to_string(l) + ".";
        auto ln_g = g.parameter(t[hidden], p + "ln_1.weight");
        auto ln_b = g.parameter(t[hidden], p + "ln_1.bias");
        auto wq = g.parameter(t[heads, head_dim, hidden], p + "attn.q_proj.weight");
        auto wk = g.parameter(t[heads, head_dim, hidden], p + "attn.k_proj.weight");
        auto wv = g.parameter(t[heads, head_dim, hidden], p + "attn.v_proj.weight");
        auto wo = g.parameter(t[hidden, heads, head_dim], p + "attn.out_proj.weight");
        auto w_in = g.parameter(t[ffn, hidden], p + "mlp.fc_in.weight");
        auto b_in = g.parameter(t[ffn], p + "mlp.fc_in.bias");
        auto w_out = g.parameter(t[hidden, ffn], p + "mlp.fc_out.weight");
        auto b_out = g.parameter(t[hidden], p + "mlp.fc_out.bias");
        layers.push_back({ln_g, ln_b, wq, wk, wv, wo, w_in, b_in, w_out, b_out});
    }
    auto ln_f_g = g.parameter(t[hidden], "ln_f.weight");
    auto ln_f_b = g.parameter(t[hidden], "ln_f.bias");
    auto head_w = g.parameter(t[vocab, hidden], "lm_head.weight");
    auto head_b = g.parameter(t[vocab], "lm_head.bias");

    step<T> st(g, s, c.n_layer, {.n_head = c.n_head, .n_kv_head = c.n_head, .head_dim = c.head_dim()});
    const auto [cos_a, sin_a] = rotary_angles(st, c.rope);
    auto x = parallel::embedding(wte, st.ids(), m);
    for (const auto& w : layers) {
        auto h = layer_norm<hidden>(x, w.ln_g, w.ln_b, c.layer_norm_epsilon);
        auto q = rotary(parallel::column_linear<hidden>(h, w.wq, m), cos_a, sin_a, c.rope.dims, true);
        auto k = rotary(parallel::column_linear<hidden>(h, w.wk, m), cos_a, sin_a, c.rope.dims, true);
        auto v = parallel::column_linear<hidden>(h, w.wv, m);
        auto ctx = st.attend(q, rename<heads, kv_heads>(k), rename<heads, kv_heads>(v));
        // Both branches read h (the parallel residual), and their row-parallel
        // partial sums are added before one all-reduce instead of two.
        auto attn = dot<heads, head_dim>(ctx, w.wo);
        auto mlp = dot<ffn>(activation(parallel::column_linear<hidden>(h, w.w_in, w.b_in, m), c.activation), w.w_out);
        auto both = parallel::reduce_over(attn + mlp, m);
        x = (both + broadcast_to(w.b_out, both)) + x;
    }
    st.finish(layer_norm<hidden>(x, ln_f_g, ln_f_b, c.layer_norm_epsilon),
              [&](const auto& h) { return parallel::lm_head(h, head_w, head_b, c.vocab_size, m); });
}

}  // namespace scribe::models::gptj

namespace scribe::models {

// GPT-J as a model family for runtime::decoder.
struct gptj_family {
    static constexpr const char* name = "GPT-J";
    using config = gptj::config;
    using graph_shape = models::graph_shape;
    static constexpr const char* prefix = "transformer.";  // GPTJForCausalLM's names (lm_head has none)
    static std::vector<weight_spec> weights(const config& c, std::int64_t degree = 1) { return gptj::weights(c, degree); }
    static bool ignored_tensor(const std::string& n) { return gptj::ignored_tensor(n); }
    static void check_tp(const config& c, std::int64_t degree) { gptj::check_tp(c, degree); }
    static std::vector<shape> cache_shapes(const config& c, std::int64_t batch, std::int64_t capacity, std::int64_t degree) {
        return gptj::cache_shapes(c, batch, capacity, degree);
    }
    static std::string summary(const config& c) {
        return "GPT-J, " + std::to_string(c.n_layer) + " layers, hidden " + std::to_string(c.n_embd) + ", " +
               std::to_string(c.n_head) + " heads of " + std::to_string(c.head_dim()) + " (rotary on " +
               std::to_string(c.rope.dims) + "), ffn " + std::to_string(c.n_inner) + ", vocab " + std::to_string(c.vocab_size) +
               ", " + std::to_string(c.n_positions) + " positions, " + c.activation;
    }
    static std::string tp_rule(const config& c) {
        return "they divide n_head " + std::to_string(c.n_head) + " and n_inner " + std::to_string(c.n_inner);
    }
    template <auto Dtype>
    static void build(graph& g, const config& c, const graph_shape& s) {
        gptj::build<Dtype>(g, c, s);
    }
};

}  // namespace scribe::models
