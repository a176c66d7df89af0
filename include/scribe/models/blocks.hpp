// scribe/models/blocks.hpp — the graph pieces every decoder family shares, in the
// DSL: the step's inputs (token ids, prompt lengths or decode positions, the KV
// cache), the positions and the attention mask, writing the cache and attending
// over it (grouped-query, sliding-window, tensor-parallel), rotary embeddings, and
// the outputs. A family's build() makes its weight parameters, then a `step`, and
// writes only what its architecture has of its own.
//
// The graphs (one per prompt bucket, and one for decoding), for a batch of
// sequences sharing a KV cache of `capacity` positions:
//
//   prefill  ids s32[batch, seq], lengths s32[batch], cache.<l>.key/value
//            -> logits, cache.<l>.key/value (written at positions [0, seq))
//   decode   ids s32[batch, seq=1], positions s32[batch], cache.<l>.key/value
//            -> logits, cache.<l>.key/value (row b written at positions[b])
//   verify   ids s32[batch, seq=n], positions s32[batch], cache.<l>.key/value
//            -> logits T[batch, seq, vocab], cache.<l>.key/value: decode over n
//            tokens at once (row b's at positions[b] .. positions[b] + n - 1, each
//            seeing the cache up to itself): speculative decoding's verification
//            of n - 1 drafted tokens (graph_shape::decode with seq = n)
//
// Caches are T[batch, cache, kv_heads, head_dim], each aliased to its output so a
// runtime updates them in place. logits are T[batch, vocab] (the last real token
// of each prompt; decode's one token), or T[batch, seq, vocab] for every prefill
// position when asked.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../parallel/layers.hpp"
#include "common.hpp"

namespace scribe::models {

using namespace scribe::nn;

// Attention's shape for step: heads and key/value heads of the whole model.
struct attention_shape {
    std::int64_t n_head = 0, n_kv_head = 0, head_dim = 0;
    std::int64_t window = 0;  // sliding window: a query sees this many positions up to itself; 0: all
    double dropout = 0;       // on the probabilities, in a graph with dropout (graph_shape::dropout)
};

// The inputs, the cache and the outputs of one graph. Make it after the weight
// parameters (the step's inputs follow them); call attend() once per layer in
// order, then finish() — or pass the layer body to layers(), which does both.
template <DtypeTag T>
class step {
public:
    using cache_tensor = tensor_of<T{}[batch, cache, kv_heads, head_dim]>;

    // Binds batch, seq, keys, cache, heads, kv_heads and head_dim (this rank's).
    step(graph& g, const graph_shape& s, std::int64_t n_layer, const attention_shape& a)
        : g_(g), s_(s), a_(a), m_{.degree = s.tp, .replicas = s.dp} {
        const auto kv = kv_heads_per_rank(a.n_kv_head, s.tp);
        g.bind(batch(s.batch), seq(s.seq), keys(s.decode ? s.capacity : s.seq),
               heads(m_.shard("the attention heads", a.n_head)), kv_heads(kv), head_dim(a.head_dim));
        if (s.kv_cache) g.bind(cache(s.capacity));
        if (s.dropout) {
            if (s.kv_cache) throw error("step: dropout is for training graphs, which have no KV cache (graph_shape::kv_cache)");
            key_.emplace(g.parameter(u32[], "dropout.key0"), g.parameter(u32[], "dropout.key1"));
        }
        ids_ = g.parameter(s32[batch, seq], "ids");
        where_ = g.parameter(s32[batch], s.decode ? "positions" : "lengths");
        const T t{};
        for (std::int64_t l = 0; l < (s.kv_cache ? n_layer : 0); ++l) {
            caches_.push_back(g.parameter(t[batch, cache, kv_heads, head_dim], "cache." + std::to_string(l) + ".key"));
            caches_.push_back(g.parameter(t[batch, cache, kv_heads, head_dim], "cache." + std::to_string(l) + ".value"));
        }
        // Positions of this step's tokens: 0.. in a prompt; in decode the cache
        // position, and those after it for the tokens after the first.
        if (!s.decode) pos_ = g.iota(s32[batch, seq], seq);
        else if (s.seq == 1) pos_ = tensor_of<s32[batch, seq]>(broadcast<seq>(*where_));
        else pos_ = tensor_of<s32[batch, seq]>(broadcast<seq>(*where_) + g.iota(s32[batch, seq], seq));
        // Which keys a query sees: those at or before it (the prompt's causal mask,
        // or the cache up to each row's position), and within the window.
        auto key = g.iota(s32[batch, seq, keys], keys);
        auto query = broadcast_to(*pos_, key);
        if (a.window > 0) {  // 0 <= query - key < window
            auto back = query - key;
            auto inside = minimum(maximum(back, broadcast_to(g.constant(s32, 0), back)),
                                  broadcast_to(g.constant(s32, static_cast<double>(a.window - 1)), back));
            mask_ = eq(back, inside);
        } else {
            mask_ = le(key, query);
        }
    }

    const tensor_of<s32[batch, seq]>& ids() const { return *ids_; }
    // Each token's position in its sequence, s32[batch, seq].
    const tensor_of<s32[batch, seq]>& positions() const { return *pos_; }
    // The token embeddings x [batch, seq, ..] of ids(). In a training graph (no
    // KV cache) the rows of ids equal to `padding_idx` pass no gradient to the
    // table, as torch's nn.Embedding(padding_idx) has it; elsewhere x itself.
    template <Tensor X>
    X token_rows(const X& x, std::optional<std::int32_t> padding_idx) const {
        if (s_.kv_cache || !padding_idx) return x;
        auto pad = eq(*ids_, broadcast_to(g_.constant(s32, static_cast<double>(*padding_idx)), *ids_));
        return X(select(broadcast_to(pad, x), stop_gradient(x), x));
    }
    // x with dropout p in a graph with dropout (graph_shape::dropout), each call
    // drawing its own counters; x itself elsewhere.
    template <Tensor X>
    X dropout(const X& x, double p) {
        if (!drops(p)) return x;
        auto y = nn::dropout(x, p, *key_, drawn_);
        drawn_ += static_cast<std::uint64_t>(element_count(x.shape()));
        return y;
    }
    // The same for this rank's shard of a value split over the tensor-parallel
    // ranks (the attention probabilities, by heads): its bits are keyed by the
    // rank too, so no two shards drop alike, while replicated values (dropout())
    // drop alike on every rank, as they must to stay equal.
    template <Tensor X>
    X sharded_dropout(const X& x, double p) {
        if (!drops(p) || s_.tp == 1) return dropout(x, p);
        if (!rank_key_) rank_key_.emplace(bitwise_xor(key_->k0, m_.rank(g_) * 2654435769.0), key_->k1);
        auto y = nn::dropout(x, p, *rank_key_, drawn_);
        drawn_ += static_cast<std::uint64_t>(element_count(x.shape()));
        return y;
    }
    // Whether dropout(x, p) drops anything.
    bool drops(double p) const { return key_ && p > 0; }
    // prefill: each prompt's length; decode: each row's position.
    const tensor_of<s32[batch]>& where() const { return *where_; }

    // The next layer's attention: q[batch, seq, heads, head_dim] and this step's
    // k, v [batch, seq, kv_heads, head_dim] (rotated already, where the family
    // rotates) written into the layer's cache, then attended over.
    // Returns [batch, seq, heads, head_dim].
    template <Tensor Q, Tensor K, Tensor V>
    auto attend(const Q& q, const K& k, const V& v) {
        const auto l = updated_.size();
        auto drop = [&](const auto& probs) { return sharded_dropout(probs, a_.dropout); };
        auto over = [&](const auto& keys_of, const auto& values_of) {
            if (s_.tp > 1 && !kv_heads_split(a_.n_kv_head, s_.tp))  // replicated KV heads: pick this rank's
                return grouped_attention(q, parallel::kv_for_rank_heads(keys_of, a_.n_head, q.extent(heads), m_),
                                         parallel::kv_for_rank_heads(values_of, a_.n_head, q.extent(heads), m_), *mask_, drop);
            return grouped_attention(q, keys_of, values_of, *mask_, drop);
        };
        if (!s_.kv_cache) {  // the sequence attends to itself; nothing is kept
            if (s_.decode) throw error("step: decoding needs the KV cache (graph_shape::kv_cache)");
            return over(rename<seq, keys>(k), rename<seq, keys>(v));
        }
        auto k_cache = caches_[l], v_cache = caches_[l + 1];
        auto ctx = [&] {
            if (s_.decode) {  // each row's new entry at its own position, then attend over the cache
                k_cache = cache_write_rows(k_cache, k, *where_);
                v_cache = cache_write_rows(v_cache, v, *where_);
                return over(rename<cache, keys>(k_cache), rename<cache, keys>(v_cache));
            }
            k_cache = cache_write_prompt(k_cache, k);  // the prompt attends to itself only
            v_cache = cache_write_prompt(v_cache, v);
            return over(rename<seq, keys>(k), rename<seq, keys>(v));
        }();
        updated_.push_back(k_cache);
        updated_.push_back(v_cache);
        return ctx;
    }

    // Sets the outputs: the logits of `final` [batch, seq, hidden] through head
    // (hidden -> vocab), then the caches, aliased to their parameters. Decode's
    // logits are [batch, vocab] for one token, [batch, seq, vocab] for several.
    template <Tensor X, class Head>
    void finish(const X& final, Head head) {
        if (s_.decode && s_.seq == 1) set_outputs(merge<seq, vocab, vocab>(head(final)));  // [batch, vocab]
        else if (s_.decode) set_outputs(head(final));
        else if (s_.last_only) set_outputs(head(last_token(final, *where_)));
        else set_outputs(head(final));
    }

    // The layers and the outputs in one call: x = layer(x, w, rows) for each
    // layer's weights w in order, then finish(x, head), where head takes the
    // final hidden state (its final norm included) to the logits.
    //
    // layer(x, w, rows) computes one layer from x [batch, seq, hidden] and
    // passes through rows() each value that row-wise work goes on from after
    // attention (the residual x, the attention's output, a parallel branch's
    // input). rows(t) is t itself, except in the last layer of a prefill graph
    // that outputs the last token's logits only (graph_shape::last_only): there
    // it is each prompt's last real token, t without seq (last_token), so the
    // last layer's output projection, MLP and norms, the final norm and the head
    // run on one row per prompt instead of seq, as llama.cpp's output-row
    // selection does. The layer body is therefore generic over its x's type.
    template <Tensor X, class Weights, class Layer, class Head>
    void layers(X x, const std::vector<Weights>& ws, Layer layer, Head head) {
        const std::size_t picked = !s_.decode && s_.last_only && !ws.empty() ? 1 : 0;
        const auto all = [](const auto& t) { return t; };
        for (std::size_t l = 0; l + picked < ws.size(); ++l) x = X(layer(x, ws[l], all));
        if (!picked) return finish(x, head);
        const auto last = [&](const auto& t) { return last_token(t, *where_); };
        set_outputs(head(layer(x, ws.back(), last)));
    }

private:
    // The logits, then the caches, aliased to their parameters.
    template <Tensor L>
    void set_outputs(const L& logits) {
        std::vector<node_id> outs = {logits.id()};
        for (const auto& u : updated_) outs.push_back(u.id());
        g_.set_outputs(outs);
        for (std::size_t k = 0; k < caches_.size(); ++k) g_.alias(k + 1, caches_[k]);
    }

    graph& g_;
    graph_shape s_;
    attention_shape a_;
    parallel::mesh m_;
    std::optional<tensor_of<s32[batch, seq]>> ids_, pos_;
    std::optional<tensor_of<s32[batch]>> where_;
    std::optional<tensor_of<pred[batch, seq, keys]>> mask_;
    std::vector<cache_tensor> caches_, updated_;
    std::optional<random_key> key_;  // dropout's
    std::optional<random_key> rank_key_;  // sharded_dropout's, made on first use
    std::uint64_t drawn_ = 0;        // counters dropout has used
};

// The rotary angles of a step's positions: cos and sin [batch, seq, freq] in T.
template <DtypeTag T>
auto rotary_angles(const step<T>& st, const rope& r) {
    graph& g = st.ids().owner();
    g.bind(freq(r.dims / 2));
    const auto f = r.inv_freq();
    return nn::rotary_angles<T>(st.positions(), g.constant(f32[freq], f));
}

}  // namespace scribe::models
