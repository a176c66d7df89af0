// scribe/nn/layers.hpp — the building blocks of decoder models, written in the DSL.
//
// Every block is a function of typed tensors: it adds nodes to the graph its
// inputs live in and names no backend. Blocks agree on a small vocabulary of
// dimension names (below); a model binds their extents on its graph. Activations
// are [batch, seq, hidden] with the hidden dimension last (row-major, so the
// contractions the blocks make are plain GEMMs on the CPU); any other order works
// too, as every op aligns operands by name.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <utility>

#include "../scribe.hpp"

namespace scribe::nn {

SCRIBE_DIM(batch);     // sequences run together
SCRIBE_DIM(seq);       // positions of this step's tokens (the query side)
SCRIBE_DIM(keys);      // positions attended to (the key/value side, the KV cache)
SCRIBE_DIM(hidden);    // the model width
SCRIBE_DIM(heads);     // attention heads
SCRIBE_DIM(head_dim);  // the width of one head
SCRIBE_DIM(ffn);       // the MLP's inner width
SCRIBE_DIM(vocab);     // the token vocabulary
SCRIBE_DIM(positions); // rows of a learned position table
SCRIBE_DIM(cache);     // positions a KV cache holds
SCRIBE_DIM(kv_heads);  // key/value heads (grouped-query attention: fewer than heads)
SCRIBE_DIM(group);     // query heads per key/value head
SCRIBE_DIM(freq);      // rotary embeddings: the frequencies (one per rotating pair)
SCRIBE_DIM(pair);      // rotary embeddings: the two members of a rotating pair

// The most negative finite value of a float dtype: what masked scores become,
// so a row with every key masked still has a finite softmax (as Hugging Face does).
inline double lowest(dtype t) {
    switch (t) {
        case dtype::f16: return -65504.0;
        case dtype::bf16: return -3.3895313892515355e38;
        case dtype::f64: return std::numeric_limits<double>::lowest();
        default: return std::numeric_limits<float>::lowest();
    }
}

// GELU, exact: 0.5 x (1 + erf(x / sqrt 2)).
template <Tensor X>
auto gelu(const X& x) {
    return x * 0.5 * (erf(x * 0.7071067811865476) + 1.0);
}

// Normalises x over D to zero mean and unit variance, then scales by gamma and
// shifts by beta (both indexed by D alone).
template <auto D, Tensor X, Tensor P>
auto layer_norm(const X& x, const P& gamma, const P& beta, double eps) {
    auto centered = x - broadcast_to(mean<D>(x), x);
    auto variance = mean<D>(centered * centered);
    return centered * broadcast_to(rsqrt(variance + eps), x) * broadcast_to(gamma, x) + broadcast_to(beta, x);
}

// Scales x by the reciprocal root mean square over D, then by weight (LLaMA's norm).
template <auto D, Tensor X, Tensor P>
auto rms_norm(const X& x, const P& weight, double eps) {
    return x * broadcast_to(rsqrt(mean<D>(x * x) + eps), x) * broadcast_to(weight, x);
}

// GELU in the tanh form GPT-2 uses: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
template <Tensor X>
auto gelu_tanh(const X& x) {
    constexpr double k = 0.7978845608028654;  // sqrt(2 / pi)
    return x * 0.5 * (tanh((x + x * x * x * 0.044715) * k) + 1.0);
}

// max(x, 0).
template <Tensor X>
auto relu(const X& x) {
    return maximum(x, broadcast_to(x.owner().constant(typename X::dtype_type{}, 0.0), x));
}

// SiLU (swish): x * sigmoid(x).
template <Tensor X>
auto silu(const X& x) {
    return x * logistic(x);
}

// An activation by its Hugging Face name (activation_function, hidden_act).
template <Tensor X>
auto activation(const X& x, const std::string& name) {
    if (name == "gelu") return gelu(x);
    if (name == "relu") return relu(x);
    if (name == "silu" || name == "swish") return silu(x);
    return gelu_tanh(x);  // gelu_new, gelu_pytorch_tanh, gelu_fast
}

// x . w + b, contracting In: x[..., In], w[In, out...], b[out...].
template <auto In, Tensor X, Tensor W, Tensor B>
auto linear(const X& x, const W& w, const B& b) {
    auto y = dot<In>(x, w);
    return y + broadcast_to(b, y);
}
template <auto In, Tensor X, Tensor W>
auto linear(const X& x, const W& w) {
    return dot<In>(x, w);
}

// The causal mask of one prompt: query position s may see key position k when
// k <= s + offset. pred[seq, keys]; offset is where this step's first token sits.
template <Tensor I>
auto causal_mask(graph& g, const I& offset) {
    auto s = g.iota(s32[seq, keys], seq) + broadcast_to(offset, g.iota(s32[seq, keys], seq));
    return le(g.iota(s32[seq, keys], keys), s);
}
inline auto causal_mask(graph& g) { return le(g.iota(s32[seq, keys], keys), g.iota(s32[seq, keys], seq)); }

// Dropout as torch applies it in training: each element of x kept with
// probability 1 - p and scaled by 1 / (1 - p), or zeroed. The choice is made by
// the counter-based bits of `key` at counters [offset, offset + x's elements)
// (ops/random.hpp): an element is kept when its u32 bits are at least p * 2^32,
// so the CPU and XLA drop the same elements. p = 0 gives x; p = 1 zeros.
template <Tensor X>
X dropout(const X& x, double p, const random_key& key, std::uint64_t offset) {
    if (!(p >= 0 && p <= 1)) throw error("dropout: the probability must be in [0, 1], got " + std::to_string(p));
    if (p == 0) return x;
    using T = typename X::dtype_type;
    graph& g = x.owner();
    const auto zero = broadcast_to(g.constant(T{}, 0.0), x);
    if (p == 1) return X(zero);
    const auto bits = random_bits(key, x, offset);
    const double threshold = std::min(std::ldexp(p, 32), 4294967295.0);
    const auto keep = ge(bits, broadcast_to(g.constant(u32, std::round(threshold)), bits));
    return X(select(keep, x * (1.0 / (1.0 - p)), zero));
}

// Scaled dot-product attention over heads:
//   q[..., seq, heads, head_dim], k and v [..., keys, heads, head_dim],
//   allowed: a pred mask over a subset of the scores' dims [..., heads, seq, keys].
// Returns [..., heads, seq, head_dim]. Masked scores become the dtype's lowest
// value before the softmax over keys.
// `on_probs`, when given, transforms the probabilities before they weigh the
// values (dropout in training).
template <Tensor Q, Tensor K, Tensor V, Tensor M, class P = std::identity>
auto attention(const Q& q, const K& k, const V& v, const M& allowed, P on_probs = {}) {
    using T = typename Q::dtype_type;
    graph& g = q.owner();
    const double scale = 1.0 / std::sqrt(static_cast<double>(q.extent(head_dim)));
    // Every dimension q and k share but head_dim ([..., heads]) is a batch dimension.
    using Batch = remove_dims<keep_dims<typename Q::dims_type, typename K::dims_type>, dims<std::remove_cvref_t<decltype(head_dim)>>>;
    auto scores = dot<head_dim, batched_of<Batch>>(q, k) * scale;
    auto floor = broadcast_to(g.constant(T{}, lowest(T::id)), scores);
    auto probs = softmax<keys>(select(broadcast_to(allowed, scores), scores, floor));
    return dot<keys, batched_of<Batch>>(decltype(probs)(on_probs(probs)), v);
}

// Attention with grouped query heads: q[batch, seq, heads, head_dim] and k, v
// [batch, keys, kv_heads, head_dim], each key/value head serving heads / kv_heads
// consecutive query heads (multi-query: one; multi-head: kv_heads = heads).
// Returns [batch, seq, heads, head_dim].
template <Tensor Q, Tensor K, Tensor V, Tensor M, class P = std::identity>
auto grouped_attention(const Q& q, const K& k, const V& v, const M& allowed, P on_probs = {}) {
    if (q.extent(heads) == k.extent(kv_heads))
        return transpose<batch, seq, heads, head_dim>(
            attention(q, rename<kv_heads, heads>(k), rename<kv_heads, heads>(v), allowed, on_probs));
    if (q.extent(heads) % k.extent(kv_heads))
        throw error("grouped attention: " + std::to_string(q.extent(heads)) + " query heads do not group over " +
                    std::to_string(k.extent(kv_heads)) + " key/value heads");
    q.owner().bind(group(q.extent(heads) / k.extent(kv_heads)));
    auto ctx = attention(split<heads, kv_heads, group>(q), k, v, allowed, on_probs);
    return transpose<batch, seq, heads, head_dim>(merge<kv_heads, group, heads>(ctx));
}

// The cos and sin of each position times each frequency, pos[batch, seq] (s32)
// and inv_freq[freq] (f32): [batch, seq, freq] each, computed in f32 (as Hugging
// Face does) and given in T.
template <DtypeTag T, Tensor P, Tensor F>
auto rotary_angles(const P& pos, const F& inv_freq) {
    auto p = broadcast<freq>(convert<f32>(pos));
    auto angle = p * broadcast_to(inv_freq, p);
    return std::pair{convert<T{}>(cos(angle)), convert<T{}>(sin(angle))};
}

// Rotary position embedding of x[..., head_dim]: the first `dims` dims of each
// head rotate in pairs by the angles (cos, sin [.., freq], freq = dims / 2); the
// rest pass. Pairs are (i, i + dims/2) in the rotate-half layout (LLaMA) and
// (2i, 2i + 1) in the interleaved one (GPT-J).
template <Tensor X, Tensor C>
auto rotary(const X& x, const C& cos_a, const C& sin_a, std::int64_t dims, bool interleaved) {
    x.owner().bind(freq(dims / 2));
    auto turn = [&](const auto& r) {  // r: [..., pair, freq] or [..., freq, pair]
        auto x1 = slice<pair>(r, 0, 1), x2 = slice<pair>(r, 1, 2);
        auto c = broadcast_to(cos_a, x1), s = broadcast_to(sin_a, x1);
        return concatenate<pair>(x1 * c - x2 * s, x2 * c + x1 * s);
    };
    auto rotate = [&](const auto& part) {
        if (interleaved) return merge<freq, pair, head_dim>(turn(split<head_dim, freq, pair.of<2>>(part)));
        return merge<pair, freq, head_dim>(turn(split<head_dim, pair.of<2>, freq>(part)));
    };
    if (dims == x.extent(head_dim)) return rotate(x);
    return concatenate<head_dim>(rotate(slice<head_dim>(x, 0, dims)), slice<head_dim>(x, dims, x.extent(head_dim)));
}

// Multi-head projections: x[..., hidden] . w[hidden, heads, head_dim] + b[heads, head_dim].
template <Tensor X, Tensor W, Tensor B>
auto project_heads(const X& x, const W& w, const B& b) {
    return linear<hidden>(x, w, b);
}

// Heads back to the model width: ctx[..., heads, seq, head_dim] . w[heads, head_dim, hidden] + b[hidden].
template <Tensor C, Tensor W, Tensor B>
auto merge_heads(const C& ctx, const W& w, const B& b) {
    auto y = dot<heads, head_dim>(ctx, w);
    return y + broadcast_to(b, y);
}

// The feed-forward block: act(x . w_in + b_in) . w_out + b_out, through ffn.
template <Tensor X, Tensor W1, Tensor B1, Tensor W2, Tensor B2, class Act>
auto mlp(const X& x, const W1& w_in, const B1& b_in, const W2& w_out, const B2& b_out, Act act) {
    return linear<ffn>(act(linear<hidden>(x, w_in, b_in)), w_out, b_out);
}

// Token embedding: the rows of table[vocab, Width] picked by ids[batch, seq],
// as [batch, seq, Width] (Width: hidden, or a family's narrower embedding).
template <auto Width = hidden, Tensor Tb, Tensor I>
auto embedding(const Tb& table, const I& ids) {
    return transpose<batch, seq, Width>(gather<vocab>(table, ids));
}

// Learned position embedding: the rows of table[positions, hidden] picked by
// pos[batch, seq], as [batch, seq, hidden].
template <Tensor Tb, Tensor I>
auto position_embedding(const Tb& table, const I& pos) {
    return transpose<batch, seq, hidden>(gather<positions>(table, pos));
}

// A prompt's keys or values, fresh[batch, seq, ...], written into
// cache[batch, cache, ...] at positions [0, seq) of every row (prefill).
template <Tensor C, Tensor N>
auto cache_write_prompt(const C& kv, const N& fresh) {
    return dynamic_update_slice<cache>(kv, rename<seq, cache>(fresh), kv.owner().constant(s32, 0));
}

// One new entry per row, fresh[batch, seq = 1, ...], written into
// cache[batch, cache, ...] at that row's own position where[batch] (decode: the
// sequences of a batch have different lengths).
template <Tensor C, Tensor N, Tensor W>
auto cache_write_rows(C kv, const N& fresh, const W& where) {
    graph& g = kv.owner();
    for (std::int64_t b = 0; b < where.extent(batch); ++b) {
        auto at = reduce_sum<batch>(slice<batch>(where, b, b + 1));
        kv = dynamic_update_slice<batch, cache>(kv, rename<seq, cache>(slice<batch>(fresh, b, b + 1)),
                                                g.constant(s32, static_cast<double>(b)), at);
    }
    return kv;
}

// Which cache positions (keys) each row's query sees in decode: those up to
// where[batch], the row's position. pred[batch, seq, keys].
template <Tensor W>
auto cache_mask(graph& g, const W& where) {
    auto key = g.iota(s32[batch, seq, keys], keys);
    return le(key, broadcast_to(where, key));
}

// The LM head: logits = x[..., hidden] . w[vocab, hidden] (GPT-2 ties w to the
// token embedding).
template <auto Width = hidden, Tensor X, Tensor Wt>
auto lm_head(const X& x, const Wt& w) {
    return dot<Width>(x, w);
}

// The hidden state of each prompt's last real token, x[batch, seq, hidden] at
// lengths[batch] - 1, picked exactly by a one-hot row: [batch, hidden].
template <Tensor X, Tensor L>
auto last_token(const X& x, const L& lengths) {
    using T = typename X::dtype_type;
    graph& g = x.owner();
    auto at = g.iota(s32[batch, seq], seq);
    auto last = broadcast_to(lengths - broadcast_to(g.constant(s32, 1), lengths), at);
    return dot<seq, batched<batch>>(convert<T{}>(eq(at, last)), x);
}

}  // namespace scribe::nn
