// scribe/nn/encoder.hpp — the blocks of encoder models (BERT and its kin), in
// the DSL: the padding mask of bidirectional attention, token-type embeddings,
// the post-LN residual, the first token and mean pooling, and the classification
// heads over a pooled vector. nn/layers.hpp has the blocks decoders share with
// them (attention, layer norm, the MLP); parallel/layers.hpp their
// tensor-parallel forms.
//
// Inputs of an encoder are right-padded: a row's tokens are positions
// [0, lengths[b]) of its sequence; the rest are padding, which no token attends
// to and pooling skips.
#pragma once

#include <cstdint>

#include "layers.hpp"

namespace scribe::nn {

SCRIBE_DIM(types);   // rows of a token-type (segment) table
SCRIBE_DIM(pooled);  // the output of a head's dense layer (as wide as hidden)
SCRIBE_DIM(labels);  // a classifier's outputs

// Which keys a query sees in bidirectional attention over right-padded rows:
// the real tokens of its row, key < lengths[b], wherever the query is; so the
// mask has no query dimension, pred[batch, keys], and attention spreads it over
// heads and queries (any number of them: all, or the first token's alone).
template <Tensor L>
auto padding_mask(graph& g, const L& lengths) {
    auto key = g.iota(s32[batch, keys], keys);
    return lt(key, broadcast_to(lengths, key));
}

// Whether each position holds a real token, pred[batch, seq].
template <Tensor L>
auto real_tokens(graph& g, const L& lengths) {
    auto at = g.iota(s32[batch, seq], seq);
    return lt(at, broadcast_to(lengths, at));
}

// Token-type (segment) embedding: the rows of table[types, hidden] picked by
// token_types[batch, seq], as [batch, seq, hidden].
template <Tensor Tb, Tensor I>
auto type_embedding(const Tb& table, const I& token_types) {
    return transpose<batch, seq, hidden>(gather<types>(table, token_types));
}

// The post-LN residual of BERT's layers: layer_norm(x + y) over hidden.
template <Tensor X, Tensor Y, Tensor P>
auto add_norm(const X& x, const Y& y, const P& gamma, const P& beta, double eps) {
    return layer_norm<hidden>(x + y, gamma, beta, eps);
}

// The first token's vector of each row, x[batch, seq, Width] -> [batch, Width]
// ([CLS] or <s>).
template <Tensor X>
auto first_token(const X& x) {
    return reduce_sum<seq>(slice<seq>(x, 0, 1));
}

// The mean of each row's real tokens, x[batch, seq, hidden] -> [batch, hidden],
// in f32 (sentence-transformers' mean pooling; padding skipped).
template <Tensor X, Tensor L>
auto mean_pool(const X& x, const L& lengths) {
    graph& g = x.owner();
    auto keep = convert<f32>(real_tokens(g, lengths));
    auto sum = dot<seq, batched<batch>>(keep, convert<f32>(x));
    return sum / broadcast_to(convert<f32>(lengths), sum);
}

// A head's dense layer over a pooled vector: act(x[batch, hidden] . w[pooled,
// hidden] + b[pooled]) (BERT's pooler and RoBERTa's classifier.dense: tanh;
// DistilBERT's pre_classifier: ReLU), as [batch, pooled].
template <Tensor X, Tensor W, Tensor B, class Act>
auto dense_over_pooled(const X& x, const W& w, const B& b, Act act) {
    return act(linear<hidden>(x, w, b));
}

// The classifier's logits: x[batch, pooled] . w[labels, pooled] + b[labels].
template <Tensor X, Tensor W, Tensor B>
auto classify(const X& x, const W& w, const B& b) {
    return linear<pooled>(x, w, b);
}

}  // namespace scribe::nn
