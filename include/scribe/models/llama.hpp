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
#include "llama_config.hpp"

namespace scribe::models::llama {

template <auto Dtype>
void build(graph& g, const config& c, const graph_shape& s) {
    using namespace nn;
    using T = std::remove_cvref_t<decltype(Dtype)>;
    const parallel::mesh m{.degree = s.tp};
    g.bind(hidden(c.hidden_size), heads(m.shard("num_attention_heads", c.n_head)),
           kv_heads(kv_heads_per_rank(c.n_kv_head, s.tp)), head_dim(c.head_dim),
           ffn(m.shard("intermediate_size", c.intermediate_size)), vocab(m.padded(c.vocab_size) / m.degree));
    const T t{};
    auto embed = g.parameter(t[vocab, hidden], "embed_tokens.weight");
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
    std::vector<layer> layers;
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        const auto p = "layers." + std::to_string(l) + ".";
        auto ln1 = g.parameter(t[hidden], p + "input_layernorm.weight");
        auto wq = g.parameter(t[heads, head_dim, hidden], p + "self_attn.q_proj.weight");
        auto wk = g.parameter(t[kv_heads, head_dim, hidden], p + "self_attn.k_proj.weight");
        auto wv = g.parameter(t[kv_heads, head_dim, hidden], p + "self_attn.v_proj.weight");
        auto wo = g.parameter(t[hidden, heads, head_dim], p + "self_attn.o_proj.weight");
        decltype(layer::bq) bq;
        decltype(layer::bk) bk, bv;
        decltype(layer::bo) bo;
        if (c.attention_bias) {
            bq = g.parameter(t[heads, head_dim], p + "self_attn.q_proj.bias");
            bk = g.parameter(t[kv_heads, head_dim], p + "self_attn.k_proj.bias");
            bv = g.parameter(t[kv_heads, head_dim], p + "self_attn.v_proj.bias");
            bo = g.parameter(t[hidden], p + "self_attn.o_proj.bias");
        }
        auto ln2 = g.parameter(t[hidden], p + "post_attention_layernorm.weight");
        auto gate = g.parameter(t[ffn, hidden], p + "mlp.gate_proj.weight");
        auto up = g.parameter(t[ffn, hidden], p + "mlp.up_proj.weight");
        auto down = g.parameter(t[hidden, ffn], p + "mlp.down_proj.weight");
        layers.push_back({ln1, wq, wk, wv, wo, bq, bk, bv, bo, ln2, gate, up, down});
    }
    auto norm = g.parameter(t[hidden], "norm.weight");
    auto lm_head = c.tie_word_embeddings ? embed : g.parameter(t[vocab, hidden], "lm_head.weight");

    step<T> st(g, s, c.n_layer, {.n_head = c.n_head, .n_kv_head = c.n_kv_head, .head_dim = c.head_dim, .window = c.sliding_window});
    const auto [cos_a, sin_a] = rotary_angles(st, c.rope);
    auto project = [&](const auto& h, const auto& w, const auto& b) {
        auto y = parallel::column_linear<hidden>(h, w, m);
        return b ? decltype(y)(y + broadcast_to(*b, y)) : y;
    };
    auto x = st.token_rows(parallel::embedding(embed, st.ids(), m), c.padding_idx);
    for (const auto& w : layers) {
        auto h = rms_norm<hidden>(x, w.ln1, c.rms_norm_eps);
        auto q = rotary(project(h, w.wq, w.bq), cos_a, sin_a, c.rope.dims, false);
        auto k = rotary(project(h, w.wk, w.bk), cos_a, sin_a, c.rope.dims, false);
        auto ctx = st.attend(q, k, project(h, w.wv, w.bv));
        auto o = parallel::row_linear<heads, head_dim>(ctx, w.wo, m);
        x = x + (w.bo ? decltype(o)(o + broadcast_to(*w.bo, o)) : o);
        x = x + parallel::gated_mlp(rms_norm<hidden>(x, w.ln2, c.rms_norm_eps), w.gate, w.up, w.down,
                                    [](const auto& u) { return silu(u); }, m);
    }
    st.finish(rms_norm<hidden>(x, norm, c.rms_norm_eps),
              [&](const auto& h) { return parallel::lm_head(h, lm_head, c.vocab_size, m); });
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
