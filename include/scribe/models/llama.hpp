// scribe/models/llama.hpp — LLaMA (Llama 2 and 3, Mistral): RMS norm, rotary
// embeddings in the rotate-half layout, grouped-query attention (optionally over
// a sliding window), the SwiGLU MLP, and an LM head of its own or tied to the
// token embedding. The rest is the shared blocks (models/blocks.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "blocks.hpp"
#include "declare.hpp"
#include "llama_config.hpp"

namespace scribe::models::llama {

// Declares every weight (models/declare.hpp) and binds the dims they use for one
// rank of mesh m. Hugging Face's nn.Linear weights are [out, in]: q_proj's
// [heads * head_dim, hidden] is read as [heads, head_dim, hidden] as it lies.
template <DtypeTag T>
auto declare(declaration d, const config& c, const parallel::mesh& m) {
    using namespace nn;
    d.graph().bind(hidden(c.hidden_size), heads(m.shard("num_attention_heads", c.n_head)),
                   kv_heads(kv_heads_per_rank(c.n_kv_head, m.degree)), head_dim(c.head_dim),
                   ffn(m.shard("intermediate_size", c.intermediate_size)), vocab(m.padded(c.vocab_size) / m.degree));
    const T t{};
    const std::string_view kv_split = kv_heads_split(c.n_kv_head, m.degree) ? "kv_heads" : "";  // else replicated
    struct layer {
        tensor_of<T{}[hidden]> ln1;
        tensor_of<T{}[heads, head_dim, hidden]> wq;
        tensor_of<T{}[kv_heads, head_dim, hidden]> wk, wv;
        tensor_of<T{}[hidden, heads, head_dim]> wo;
        std::optional<tensor_of<T{}[heads, head_dim]>> bq;
        std::optional<tensor_of<T{}[kv_heads, head_dim]>> bk, bv;
        std::optional<tensor_of<T{}[hidden]>> bo;
        tensor_of<T{}[hidden]> ln2;
        tensor_of<T{}[ffn, hidden]> gate, up;
        tensor_of<T{}[hidden, ffn]> down;
    };
    struct weights {
        tensor_of<T{}[vocab, hidden]> embed;
        std::vector<layer> layers;
        tensor_of<T{}[hidden]> norm;
        tensor_of<T{}[vocab, hidden]> lm_head;
    };
    auto embed = d(t[vocab, hidden], "embed_tokens.weight", {.split = "vocab", .init = {.zero_row = c.padding_idx}});
    std::vector<layer> layers;
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        const auto p = "layers." + std::to_string(l) + ".";
        auto ln1 = d(t[hidden], p + "input_layernorm.weight", {.init = ones});
        auto wq = d(t[heads, head_dim, hidden], p + "self_attn.q_proj.weight", {.split = "heads", .stored = {2, 1}});
        auto wk = d(t[kv_heads, head_dim, hidden], p + "self_attn.k_proj.weight", {.split = kv_split, .stored = {2, 1}});
        auto wv = d(t[kv_heads, head_dim, hidden], p + "self_attn.v_proj.weight", {.split = kv_split, .stored = {2, 1}});
        auto wo = d(t[hidden, heads, head_dim], p + "self_attn.o_proj.weight", {.split = "heads", .stored = {1, 2}});
        decltype(layer::bq) bq;
        decltype(layer::bk) bk, bv;
        decltype(layer::bo) bo;
        if (c.attention_bias) {
            bq = d(t[heads, head_dim], p + "self_attn.q_proj.bias", {.split = "heads", .stored = {2}, .init = zeros});
            bk = d(t[kv_heads, head_dim], p + "self_attn.k_proj.bias", {.split = kv_split, .stored = {2}, .init = zeros});
            bv = d(t[kv_heads, head_dim], p + "self_attn.v_proj.bias", {.split = kv_split, .stored = {2}, .init = zeros});
            bo = d(t[hidden], p + "self_attn.o_proj.bias", {.init = zeros});
        }
        auto ln2 = d(t[hidden], p + "post_attention_layernorm.weight", {.init = ones});
        auto gate = d(t[ffn, hidden], p + "mlp.gate_proj.weight", {.split = "ffn"});
        auto up = d(t[ffn, hidden], p + "mlp.up_proj.weight", {.split = "ffn"});
        auto down = d(t[hidden, ffn], p + "mlp.down_proj.weight", {.split = "ffn"});
        layers.push_back({ln1, wq, wk, wv, wo, bq, bk, bv, bo, ln2, gate, up, down});
    }
    auto norm = d(t[hidden], "norm.weight", {.init = ones});
    auto lm_head = c.tie_word_embeddings ? embed : d(t[vocab, hidden], "lm_head.weight", {.split = "vocab"});
    return weights{embed, std::move(layers), norm, lm_head};
}

// Every weight, in the order the graphs create their parameters, and how each is
// split over `degree` ranks.
inline std::vector<weight_spec> weights(const config& c, std::int64_t degree = 1) {
    return list_weights(degree, c, declare<dtype_of<f32>>);
}

template <auto Dtype>
void build(graph& g, const config& c, const graph_shape& s) {
    using namespace nn;
    using T = std::remove_cvref_t<decltype(Dtype)>;
    const parallel::mesh m{.degree = s.tp, .replicas = s.dp};
    const auto all = declare<T>(declaration(g, s.weights), c, m);

    step<T> st(g, s, c.n_layer, {.n_head = c.n_head, .n_kv_head = c.n_kv_head, .head_dim = c.head_dim, .window = c.sliding_window,
                                  .dropout = c.dropout.attention});
    const auto [cos_a, sin_a] = rotary_angles(st, c.rope);
    auto project = [&](const auto& h, const auto& w, const auto& b) {
        auto y = parallel::column_linear<hidden>(h, w, m);
        return b ? decltype(y)(y + broadcast_to(*b, y)) : y;
    };
    auto x = st.token_rows(parallel::embedding(all.embed, st.ids(), m), c.padding_idx);
    auto layer = [&](const auto& x, const auto& w, auto rows) {
        auto h = rms_norm<hidden>(x, w.ln1, c.rms_norm_eps);
        auto q = rotary(project(h, w.wq, w.bq), cos_a, sin_a, c.rope.dims, false);
        auto k = rotary(project(h, w.wk, w.bk), cos_a, sin_a, c.rope.dims, false);
        auto ctx = st.attend(q, k, project(h, w.wv, w.bv));
        auto o = parallel::row_linear<heads, head_dim>(rows(ctx), w.wo, m);
        auto r = rows(x) + (w.bo ? decltype(o)(o + broadcast_to(*w.bo, o)) : o);
        return r + parallel::gated_mlp(rms_norm<hidden>(r, w.ln2, c.rms_norm_eps), w.gate, w.up, w.down,
                                       [](const auto& u) { return silu(u); }, m);
    };
    st.layers(x, all.layers, layer, [&](const auto& x) {
        return parallel::lm_head(rms_norm<hidden>(x, all.norm, c.rms_norm_eps), all.lm_head, c.vocab_size, m);
    });
}

}  // namespace scribe::models::llama

namespace scribe::models {

// LLaMA as a model family for runtime::decoder.
struct llama_family {
    static constexpr const char* name = "LLaMA";
    using config = llama::config;
    using graph_shape = models::graph_shape;
    static constexpr const char* prefix = "model.";  // LlamaForCausalLM's names (lm_head has none); LlamaModel's have none
    static std::vector<weight_spec> weights(const config& c, std::int64_t degree = 1) { return llama::weights(c, degree); }
    static bool ignored_tensor(const std::string& n) { return llama::ignored_tensor(n); }
    static void check_tp(const config& c, std::int64_t degree) { llama::check_tp(c, degree); }
    static std::vector<shape> cache_shapes(const config& c, std::int64_t batch, std::int64_t capacity, std::int64_t degree) {
        return llama::cache_shapes(c, batch, capacity, degree);
    }
    static std::string summary(const config& c) {
        return std::string(c.model_type == "mistral" ? "Mistral" : "LLaMA") + ", " + std::to_string(c.n_layer) + " layers, hidden " +
               std::to_string(c.hidden_size) + ", " + std::to_string(c.n_head) + " heads of " + std::to_string(c.head_dim) +
               " (" + std::to_string(c.n_kv_head) + " key/value), ffn " + std::to_string(c.intermediate_size) + ", vocab " +
               std::to_string(c.vocab_size) + ", " + std::to_string(c.n_positions) + " positions, rope " + c.rope.scaling +
               (c.sliding_window ? ", sliding window " + std::to_string(c.sliding_window) : std::string()) +
               (c.tie_word_embeddings ? ", tied LM head" : "");
    }
    static std::string tp_rule(const config& c) {
        return "they divide num_attention_heads " + std::to_string(c.n_head) + " and intermediate_size " +
               std::to_string(c.intermediate_size) + "; the " + std::to_string(c.n_kv_head) +
               " key/value heads are split where the degree divides them, replicated otherwise";
    }
    template <auto Dtype>
    static void build(graph& g, const config& c, const graph_shape& s) {
        llama::build<Dtype>(g, c, s);
    }
};

}  // namespace scribe::models
