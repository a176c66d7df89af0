// scribe/models/gpt2.hpp — GPT-2: its config.json, its weight names, and one
// forward definition that builds both graphs a generator needs. No backend here.
//
// The graphs (one per prompt bucket, and one for decoding), for a batch of
// sequences sharing a KV cache of `capacity` positions:
//
//   prefill  ids s32[batch, seq], lengths s32[batch], cache.<l>.key/value
//            -> logits, cache.<l>.key/value (written at positions [0, seq))
//   decode   ids s32[batch, seq=1], positions s32[batch], cache.<l>.key/value
//            -> logits, cache.<l>.key/value (row b written at positions[b])
//
// Caches are T[batch, cache, heads, head_dim], each aliased to its output so a
// runtime updates them in place. logits are T[batch, vocab] (the last real token
// of each prompt; decode's one token), or T[batch, seq, vocab] for every prefill
// position when asked. The weights are graph parameters named as in Hugging Face
// checkpoints ("h.0.attn.c_attn.weight"), in views that need no copy of the
// checkpoint's bytes: GPT-2's Conv1D weights are [in, out] row-major, so c_attn's
// [hidden, 3 * hidden] is [hidden, qkv, heads, head_dim] as it lies.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../parallel/layers.hpp"
#include "gpt2_config.hpp"

namespace scribe::models::gpt2 {

SCRIBE_DIM(qkv);  // query, key, value: c_attn's three parts
using nn::cache;

// The shapes of one graph.
struct graph_shape {
    std::int64_t batch = 1;
    std::int64_t seq = 1;       // the prompt bucket (prefill) or 1 (decode)
    std::int64_t capacity = 1;  // positions the KV cache holds
    bool decode = false;
    bool last_only = true;      // prefill: logits of each prompt's last token only
    std::int64_t tp = 1;        // tensor-parallel degree: the graph is one rank's
};

namespace detail {

template <Tensor X>
auto activation(const X& x, const std::string& name) {
    if (name == "gelu") return nn::gelu(x);
    if (name == "relu") return maximum(x, broadcast_to(x.owner().constant(typename X::dtype_type{}, 0.0), x));
    if (name == "silu" || name == "swish") return x * logistic(x);
    return nn::gelu_tanh(x);  // gelu_new, gelu_pytorch_tanh, gelu_fast
}

// Part i of qkv, as [.., heads, head_dim].
template <Tensor X>
auto part(const X& x, std::int64_t i) {
    return merge<qkv, nn::heads, nn::heads>(slice<qkv>(x, i, i + 1));
}

}  // namespace detail

// Builds the prefill or decode graph of a GPT-2 in dtype Dtype (f32, f16, bf16) on g (empty, named by
// the caller): parameters are the weights (in weights()'s order), then the step's
// inputs and the caches; outputs are the logits, then the caches, aliased.
// With s.tp > 1 the graph is what every rank runs, on its shards of the weights
// (split as weights() says) and its heads of the cache; the logits are whole.
template <auto Dtype>
void build(graph& g, const config& c, const graph_shape& s) {
    using namespace nn;
    using T = std::remove_cvref_t<decltype(Dtype)>;
    const parallel::mesh m{.degree = s.tp};
    g.bind(batch(s.batch), seq(s.seq), keys(s.decode ? s.capacity : s.seq), hidden(c.n_embd),
           heads(m.shard("n_head", c.n_head)), head_dim(c.head_dim()), ffn(m.shard("n_inner", c.n_inner)),
           vocab(m.padded(c.vocab_size) / m.degree), positions(c.n_positions), qkv(3), cache(s.capacity));
    const T t{};
    auto wte = g.parameter(t[vocab, hidden], "wte.weight");
    auto wpe = g.parameter(t[positions, hidden], "wpe.weight");
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
    std::vector<layer> layers;
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        const auto p = "h." + std::to_string(l) + ".";
        layers.push_back({g.parameter(t[hidden], p + "ln_1.weight"), g.parameter(t[hidden], p + "ln_1.bias"),
                          g.parameter(t[hidden, qkv, heads, head_dim], p + "attn.c_attn.weight"),
                          g.parameter(t[qkv, heads, head_dim], p + "attn.c_attn.bias"),
                          g.parameter(t[heads, head_dim, hidden], p + "attn.c_proj.weight"),
                          g.parameter(t[hidden], p + "attn.c_proj.bias"), g.parameter(t[hidden], p + "ln_2.weight"),
                          g.parameter(t[hidden], p + "ln_2.bias"), g.parameter(t[hidden, ffn], p + "mlp.c_fc.weight"),
                          g.parameter(t[ffn], p + "mlp.c_fc.bias"), g.parameter(t[ffn, hidden], p + "mlp.c_proj.weight"),
                          g.parameter(t[hidden], p + "mlp.c_proj.bias")});
    }
    auto ln_f_g = g.parameter(t[hidden], "ln_f.weight");
    auto ln_f_b = g.parameter(t[hidden], "ln_f.bias");

    auto ids = g.parameter(s32[batch, seq], "ids");
    auto where = g.parameter(s32[batch], s.decode ? "positions" : "lengths");
    std::vector<tensor_of<T{}[batch, cache, heads, head_dim]>> caches;
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        caches.push_back(g.parameter(t[batch, cache, heads, head_dim], "cache." + std::to_string(l) + ".key"));
        caches.push_back(g.parameter(t[batch, cache, heads, head_dim], "cache." + std::to_string(l) + ".value"));
    }

    // Positions of this step's tokens: 0.. in a prompt, the cache position in decode.
    auto pos = s.decode ? broadcast<seq>(where) : g.iota(s32[batch, seq], seq);
    auto x = parallel::embedding(wte, ids, m) + position_embedding(wpe, pos);

    // Which keys a query sees: the causal mask over the prompt, or the cache up to
    // each row's position.
    auto mask = [&] {
        if (s.decode) return cache_mask(g, where);
        auto key = g.iota(s32[batch, seq, keys], keys);
        return le(key, g.iota(s32[batch, seq, keys], seq));  // causal, per row
    }();

    std::vector<tensor_of<T{}[batch, cache, heads, head_dim]>> updated;
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
        const auto& w = layers[static_cast<std::size_t>(l)];
        auto h = layer_norm<hidden>(x, w.ln1_g, w.ln1_b, c.layer_norm_epsilon);
        auto y = linear<hidden>(h, w.w_qkv, w.b_qkv);  // [batch, seq, qkv, heads, head_dim]
        auto q = detail::part(y, 0), k = detail::part(y, 1), v = detail::part(y, 2);
        auto k_cache = caches[static_cast<std::size_t>(2 * l)], v_cache = caches[static_cast<std::size_t>(2 * l + 1)];
        auto ctx = [&] {
            if (s.decode) {  // each row's new entry at its own position, then attend over the cache
                k_cache = cache_write_rows(k_cache, k, where);
                v_cache = cache_write_rows(v_cache, v, where);
                return attention(q, rename<cache, keys>(k_cache), rename<cache, keys>(v_cache), mask);
            }
            k_cache = cache_write_prompt(k_cache, k);  // the prompt attends to itself only
            v_cache = cache_write_prompt(v_cache, v);
            return attention(q, rename<seq, keys>(k), rename<seq, keys>(v), mask);
        }();
        updated.push_back(k_cache);
        updated.push_back(v_cache);
        x = x + parallel::row_linear<heads, head_dim>(ctx, w.w_o, w.b_o, m);
        auto h2 = layer_norm<hidden>(x, w.ln2_g, w.ln2_b, c.layer_norm_epsilon);
        x = x + parallel::mlp(h2, w.w_fc, w.b_fc, w.w_proj, w.b_proj,
                              [&](const auto& u) { return detail::activation(u, c.activation); }, m);
    }
    auto final = layer_norm<hidden>(x, ln_f_g, ln_f_b, c.layer_norm_epsilon);

    auto set_outputs = [&](const auto& logits) {
        std::vector<node_id> outs = {logits.id()};
        for (const auto& u : updated) outs.push_back(u.id());
        g.set_outputs(outs);
        for (std::size_t k = 0; k < caches.size(); ++k) g.alias(k + 1, caches[k]);
    };
    auto head = [&](const auto& h) { return parallel::lm_head(h, wte, c.vocab_size, m); };
    if (s.decode) set_outputs(merge<seq, vocab, vocab>(head(final)));  // [batch, vocab]
    else if (s.last_only) set_outputs(head(last_token(final, where)));
    else set_outputs(head(final));
}

}  // namespace scribe::models::gpt2

namespace scribe::models {

// GPT-2 as a model family for runtime::decoder.
struct gpt2_family {
    static constexpr const char* name = "GPT-2";
    using config = gpt2::config;
    using graph_shape = gpt2::graph_shape;
    static std::vector<gpt2::weight_spec> weights(const config& c) { return gpt2::weights(c); }
    static bool ignored_tensor(const std::string& n) { return gpt2::ignored_tensor(n); }
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
