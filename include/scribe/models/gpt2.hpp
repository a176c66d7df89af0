// scribe/models/gpt2.hpp — GPT-2: one forward definition that builds both graphs
// a generator needs (models/blocks.hpp describes them), on the shared blocks: its
// own are the fused c_attn projection, learned positions, pre-norm LayerNorm, and
// the LM head tied to the token embedding. No backend here.
//
// The weights are graph parameters named as in Hugging Face checkpoints
// ("h.0.attn.c_attn.weight"), in views that need no copy of the checkpoint's
// bytes: GPT-2's Conv1D weights are [in, out] row-major, so c_attn's
// [hidden, 3 * hidden] is [hidden, qkv, heads, head_dim] as it lies.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "blocks.hpp"
#include "declare.hpp"
#include "gpt2_config.hpp"

namespace scribe::models::gpt2 {

SCRIBE_DIM(qkv);  // query, key, value: c_attn's three parts
using nn::cache;

namespace detail {

// Part i of qkv, as [.., heads, head_dim].
template <Tensor X>
auto part(const X& x, std::int64_t i) {
    return merge<qkv, nn::heads, nn::heads>(slice<qkv>(x, i, i + 1));
}

}  // namespace detail

// Declares every weight of a GPT-2 (models/declare.hpp) and binds the dims they
// use for one rank of mesh m. GPT-2's Conv1D weights are [in, out] as stored.
template <DtypeTag T>
auto declare(declaration d, const config& c, const parallel::mesh& m) {
    using namespace nn;
    d.graph().bind(hidden(c.n_embd), heads(m.shard("n_head", c.n_head)), head_dim(c.head_dim()),
                   ffn(m.shard("n_inner", c.n_inner)), vocab(m.padded(c.vocab_size) / m.degree), positions(c.n_positions), qkv(3));
    const T t{};
    // Hugging Face draws the residual projections (c_proj) with std / sqrt(2 n_layer).
    const weight_init residual{.scale = 1.0 / std::sqrt(2.0 * static_cast<double>(c.n_layer))};
    struct layer {
        tensor_of<T{}[hidden]> ln1_g, ln1_b;
        tensor_of<T{}[hidden, qkv, heads, head_dim]> w_qkv;
        tensor_of<T{}[qkv, heads, head_dim]> b_qkv;
        tensor_of<T{}[heads, head_dim, hidden]> w_o;
        tensor_of<T{}[hidden]> b_o, ln2_g, ln2_b;
        tensor_of<T{}[hidden, ffn]> w_fc;
        tensor_of<T{}[ffn]> b_fc;
        tensor_of<T{}[ffn, hidden]> w_proj;
        tensor_of<T{}[hidden]> b_proj;
    };
    struct weights {
        tensor_of<T{}[vocab, hidden]> wte;
        tensor_of<T{}[positions, hidden]> wpe;
        std::vector<layer> layers;
        tensor_of<T{}[hidden]> ln_f_g, ln_f_b;
    };
    auto wte = d(t[vocab, hidden], "wte.weight", {.split = "vocab"});
    auto wpe = d(t[positions, hidden], "wpe.weight");
    std::vector<layer> layers;
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        const auto p = "h." + std::to_string(l) + ".";
        auto ln1_g = d(t[hidden], p + "ln_1.weight", {.init = ones});
        auto ln1_b = d(t[hidden], p + "ln_1.bias", {.init = zeros});
        auto w_qkv = d(t[hidden, qkv, heads, head_dim], p + "attn.c_attn.weight", {.split = "heads", .stored = {1, 3}, .in = {"hidden"}});
        auto b_qkv = d(t[qkv, heads, head_dim], p + "attn.c_attn.bias", {.split = "heads", .stored = {3}, .init = zeros});
        auto w_o = d(t[heads, head_dim, hidden], p + "attn.c_proj.weight", {.split = "heads", .stored = {2, 1}, .init = residual, .in = {"heads", "head_dim"}});
        auto b_o = d(t[hidden], p + "attn.c_proj.bias", {.init = zeros});
        auto ln2_g = d(t[hidden], p + "ln_2.weight", {.init = ones});
        auto ln2_b = d(t[hidden], p + "ln_2.bias", {.init = zeros});
        auto w_fc = d(t[hidden, ffn], p + "mlp.c_fc.weight", {.split = "ffn", .in = {"hidden"}});
        auto b_fc = d(t[ffn], p + "mlp.c_fc.bias", {.split = "ffn", .init = zeros});
        auto w_proj = d(t[ffn, hidden], p + "mlp.c_proj.weight", {.split = "ffn", .init = residual, .in = {"ffn"}});
        auto b_proj = d(t[hidden], p + "mlp.c_proj.bias", {.init = zeros});
        layers.push_back({ln1_g, ln1_b, w_qkv, b_qkv, w_o, b_o, ln2_g, ln2_b, w_fc, b_fc, w_proj, b_proj});
    }
    auto ln_f_g = d(t[hidden], "ln_f.weight", {.init = ones});
    auto ln_f_b = d(t[hidden], "ln_f.bias", {.init = zeros});
    return weights{wte, wpe, std::move(layers), ln_f_g, ln_f_b};
}

// Every weight GPT-2 has, in the order the graphs create their parameters, and
// how each is split over `degree` tensor-parallel ranks.
inline std::vector<weight_spec> weights(const config& c, std::int64_t degree = 1) {
    return list_weights(degree, c, declare<dtype_of<f32>>);
}

// Builds the prefill or decode graph of a GPT-2 in dtype Dtype (f32, f16, bf16) on g (empty, named by
// the caller): parameters are the weights (in weights()'s order), then the step's
// inputs and the caches; outputs are the logits, then the caches, aliased.
// With s.tp > 1 the graph is what every rank runs, on its shards of the weights
// (split as weights() says) and its heads of the cache; the logits are whole.
template <auto Dtype>
void build(graph& g, const config& c, const graph_shape& s) {
    using namespace nn;
    using T = std::remove_cvref_t<decltype(Dtype)>;
    const parallel::mesh m{.degree = s.tp, .replicas = s.dp};
    const auto all = declare<T>(declaration(g, s.weights), c, m);
    const auto& wte = all.wte;

    step<T> st(g, s, c.n_layer, {.n_head = c.n_head, .n_kv_head = c.n_head, .head_dim = c.head_dim(), .dropout = c.dropout.attention});
    auto x = st.dropout(parallel::embedding(wte, st.ids(), m) + position_embedding(all.wpe, st.positions()), c.dropout.embedding);
    auto layer = [&](const auto& x, const auto& w, auto rows) {
        auto h = layer_norm<hidden>(x, w.ln1_g, w.ln1_b, c.layer_norm_epsilon);
        auto y = parallel::column_linear<hidden>(h, w.w_qkv, w.b_qkv, m);  // [batch, seq, qkv, heads, head_dim]
        auto ctx = st.attend(detail::part(y, 0), rename<heads, kv_heads>(detail::part(y, 1)),
                             rename<heads, kv_heads>(detail::part(y, 2)));
        auto r = rows(x) + st.dropout(parallel::row_linear<heads, head_dim>(rows(ctx), w.w_o, w.b_o, m), c.dropout.residual);
        auto h2 = layer_norm<hidden>(r, w.ln2_g, w.ln2_b, c.layer_norm_epsilon);
        return r + st.dropout(parallel::mlp(h2, w.w_fc, w.b_fc, w.w_proj, w.b_proj,
                                            [&](const auto& u) { return nn::activation(u, c.activation); }, m),
                              c.dropout.residual);
    };
    st.layers(x, all.layers, layer, [&](const auto& x) {
        return parallel::lm_head(layer_norm<hidden>(x, all.ln_f_g, all.ln_f_b, c.layer_norm_epsilon), wte, c.vocab_size, m);
    });
}

}  // namespace scribe::models::gpt2

namespace scribe::models {

// GPT-2 as a model family for runtime::decoder.
struct gpt2_family {
    static constexpr const char* name = "GPT-2";
    using config = gpt2::config;
    using graph_shape = models::graph_shape;
    static constexpr const char* prefix = "transformer.";  // GPT2LMHeadModel's names; GPT2Model's have none
    static std::vector<weight_spec> weights(const config& c, std::int64_t degree = 1) { return gpt2::weights(c, degree); }
    static bool ignored_tensor(const std::string& n) { return gpt2::ignored_tensor(n); }
    static std::string summary(const config& c) {
        return "GPT-2, " + std::to_string(c.n_layer) + " layers, hidden " + std::to_string(c.n_embd) + ", " +
               std::to_string(c.n_head) + " heads of " + std::to_string(c.head_dim()) + ", ffn " + std::to_string(c.n_inner) +
               ", vocab " + std::to_string(c.vocab_size) + ", " + std::to_string(c.n_positions) + " positions, " + c.activation;
    }
    static std::string tp_rule(const config& c) {
        return "they divide n_head " + std::to_string(c.n_head) + " and n_inner " + std::to_string(c.n_inner);
    }
    static void check_tp(const config& c, std::int64_t degree) { gpt2::check_tp(c, degree); }
    static std::vector<shape> cache_shapes(const config& c, std::int64_t batch, std::int64_t capacity, std::int64_t degree) {
        return gpt2::cache_shapes(c, batch, capacity, degree);
    }
    template <auto Dtype>
    static void build(graph& g, const config& c, const graph_shape& s) {
        gpt2::build<Dtype>(g, c, s);
    }
};

}  // namespace scribe::models
