// scribe/models/gptj.hpp — GPT-J: attention and MLP side by side on one
// LayerNorm (the parallel residual), rotary embeddings on the first rotary_dim
// dims of each head in the interleaved layout, and an LM head with a bias. The
// rest is the shared blocks (models/blocks.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blocks.hpp"
#include "declare.hpp"
#include "gptj_config.hpp"

namespace scribe::models::gptj {

// Declares every weight (models/declare.hpp) and binds the dims they use for one
// rank of mesh m. nn.Linear weights are [out, in].
template <DtypeTag T>
auto declare(declaration d, const config& c, const parallel::mesh& m) {
    using namespace nn;
    d.graph().bind(hidden(c.n_embd), heads(m.shard("n_head", c.n_head)), kv_heads(m.shard("n_head", c.n_head)),
                   head_dim(c.head_dim()), ffn(m.shard("n_inner", c.n_inner)), vocab(m.padded(c.vocab_size) / m.degree));
    const T t{};
    struct layer {
        tensor_of<T{}[hidden]> ln_g, ln_b;
        tensor_of<T{}[heads, head_dim, hidden]> wq, wk, wv;
        tensor_of<T{}[hidden, heads, head_dim]> wo;
        tensor_of<T{}[ffn, hidden]> w_in;
        tensor_of<T{}[ffn]> b_in;
        tensor_of<T{}[hidden, ffn]> w_out;
        tensor_of<T{}[hidden]> b_out;
    };
    struct weights {
        tensor_of<T{}[vocab, hidden]> wte;
        std::vector<layer> layers;
        tensor_of<T{}[hidden]> ln_f_g, ln_f_b;
        tensor_of<T{}[vocab, hidden]> head_w;
        tensor_of<T{}[vocab]> head_b;
    };
    auto wte = d(t[vocab, hidden], "wte.weight", {.split = "vocab"});
    std::vector<layer> layers;
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        const auto p = "h." + std::to_string(l) + ".";
        auto ln_g = d(t[hidden], p + "ln_1.weight", {.init = ones});
        auto ln_b = d(t[hidden], p + "ln_1.bias", {.init = zeros});
        auto wq = d(t[heads, head_dim, hidden], p + "attn.q_proj.weight", {.split = "heads", .stored = {2, 1}});
        auto wk = d(t[heads, head_dim, hidden], p + "attn.k_proj.weight", {.split = "heads", .stored = {2, 1}});
        auto wv = d(t[heads, head_dim, hidden], p + "attn.v_proj.weight", {.split = "heads", .stored = {2, 1}});
        auto wo = d(t[hidden, heads, head_dim], p + "attn.out_proj.weight", {.split = "heads", .stored = {1, 2}});
        auto w_in = d(t[ffn, hidden], p + "mlp.fc_in.weight", {.split = "ffn"});
        auto b_in = d(t[ffn], p + "mlp.fc_in.bias", {.split = "ffn", .init = zeros});
        auto w_out = d(t[hidden, ffn], p + "mlp.fc_out.weight", {.split = "ffn"});
        auto b_out = d(t[hidden], p + "mlp.fc_out.bias", {.init = zeros});
        layers.push_back({ln_g, ln_b, wq, wk, wv, wo, w_in, b_in, w_out, b_out});
    }
    auto ln_f_g = d(t[hidden], "ln_f.weight", {.init = ones});
    auto ln_f_b = d(t[hidden], "ln_f.bias", {.init = zeros});
    auto head_w = d(t[vocab, hidden], "lm_head.weight", {.split = "vocab"});
    auto head_b = d(t[vocab], "lm_head.bias", {.split = "vocab", .init = zeros});
    return weights{wte, std::move(layers), ln_f_g, ln_f_b, head_w, head_b};
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

    step<T> st(g, s, c.n_layer, {.n_head = c.n_head, .n_kv_head = c.n_head, .head_dim = c.head_dim(), .dropout = c.dropout.attention});
    const auto [cos_a, sin_a] = rotary_angles(st, c.rope);
    auto x = st.dropout(parallel::embedding(all.wte, st.ids(), m), c.dropout.embedding);
    auto layer = [&](const auto& x, const auto& w, auto rows) {
        auto h = layer_norm<hidden>(x, w.ln_g, w.ln_b, c.layer_norm_epsilon);
        auto q = rotary(parallel::column_linear<hidden>(h, w.wq, m), cos_a, sin_a, c.rope.dims, true);
        auto k = rotary(parallel::column_linear<hidden>(h, w.wk, m), cos_a, sin_a, c.rope.dims, true);
        auto v = parallel::column_linear<hidden>(h, w.wv, m);
        auto ctx = st.attend(q, rename<heads, kv_heads>(k), rename<heads, kv_heads>(v));
        // Both branches read h (the parallel residual), and their row-parallel
        // partial sums are added before one all-reduce instead of two — unless
        // training drops elements of each branch's own output.
        auto attn = dot<heads, head_dim>(rows(ctx), w.wo);
        auto mlp = dot<ffn>(activation(parallel::column_linear<hidden>(rows(h), w.w_in, w.b_in, m), c.activation), w.w_out);
        using R = decltype(rows(x));
        if (st.drops(c.dropout.residual)) {
            auto a = parallel::reduce_over(attn, m), f = parallel::reduce_over(mlp, m);
            return R((st.dropout(a, c.dropout.residual) + st.dropout(f + broadcast_to(w.b_out, f), c.dropout.residual)) + rows(x));
        }
        auto both = parallel::reduce_over(attn + mlp, m);
        return R((both + broadcast_to(w.b_out, both)) + rows(x));
    };
    st.layers(x, all.layers, layer, [&](const auto& x) {
        return parallel::lm_head(layer_norm<hidden>(x, all.ln_f_g, all.ln_f_b, c.layer_norm_epsilon), all.head_w, all.head_b,
                                 c.vocab_size, m);
    });
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
