// scribe/parallel/layers.hpp — the tensor-parallel forms of the nn blocks (the
// Megatron layout). A model calls these with its mesh; at degree 1 they add no
// collective and are the plain nn blocks, so one model definition serves TP 1 and N.
//
//   column_linear   w[in, out...] split along an output dim (Q/K/V, MLP up/gate):
//                   each rank computes its slice of the outputs; no communication.
//   row_linear      w[in..., out] split along the contracted dim (attention out,
//                   MLP down): partial sums, all-reduced, then the bias, once.
//   embedding       table[vocab, hidden] split along vocab (padded to a multiple
//                   of the degree): each rank looks up the ids it holds, zeros for
//                   the rest, and the all-reduce sum assembles the rows.
//   lm_head         logits of the rank's vocab slice, all-gathered along vocab,
//                   the padding cut off.
//   mlp             column_linear, the activation, row_linear.
// Norms are replicated; the KV cache is split by heads with the projections.
// Each rank's weights are its shards (parallel/weights.hpp cuts them).
#pragma once

#include "../nn/layers.hpp"
#include "mesh.hpp"

namespace scribe::parallel {

using namespace scribe::nn;

// x summed over the ranks (nothing at degree 1).
template <Tensor X>
X reduce_over(const X& x, const mesh& m) {
    return m.degree == 1 ? x : X(all_reduce_sum(x, m.groups()));
}

template <auto In, Tensor X, Tensor W, Tensor B>
auto column_linear(const X& x, const W& w, const B& b) {
    return nn::linear<In>(x, w, b);
}

// x[..., In...] . w[In..., out] summed over the ranks, + b[out].
template <auto... In, Tensor X, Tensor W, Tensor B>
auto row_linear(const X& x, const W& w, const B& b, const mesh& m) {
    auto y = reduce_over(dot<In...>(x, w), m);
    return y + broadcast_to(b, y);
}

template <Tensor X, Tensor W1, Tensor B1, Tensor W2, Tensor B2, class Act>
auto mlp(const X& x, const W1& w_in, const B1& b_in, const W2& w_out, const B2& b_out, Act act, const mesh& m) {
    return row_linear<ffn>(act(column_linear<hidden>(x, w_in, b_in)), w_out, b_out, m);
}

// Token embedding from this rank's rows of the table, [batch, seq, hidden]:
// rows [rank * V, (rank + 1) * V) where V is the table's vocab extent.
template <Tensor Tb, Tensor I>
auto embedding(const Tb& table, const I& ids, const mesh& m) {
    if (m.degree == 1) return nn::embedding(table, ids);
    graph& g = table.owner();
    const auto rows = table.extent(vocab);
    auto first = convert<s32>(replica_id(g)) * static_cast<double>(rows);
    auto local = ids - broadcast_to(first, ids);
    auto zero = broadcast_to(g.constant(s32, 0), ids);
    auto clamped = minimum(maximum(local, zero), broadcast_to(g.constant(s32, static_cast<double>(rows - 1)), ids));
    auto found = nn::embedding(table, clamped);
    auto mine = broadcast_to(eq(local, clamped), found);  // the id is one of this rank's rows
    using T = typename Tb::dtype_type;
    auto none = broadcast_to(g.constant(T{}, 0.0), found);
    return reduce_over(select(mine, found, none), m);
}

// logits[..., vocab] = x[..., hidden] . w[vocab, hidden], the ranks' slices joined
// and cut to the real vocabulary of `vocab_size` tokens.
template <Tensor X, Tensor Wt>
auto lm_head(const X& x, const Wt& w, std::int64_t vocab_size, const mesh& m) {
    auto logits = nn::lm_head(x, w);
    if (m.degree == 1) return logits;
    auto all = all_gather<vocab>(logits, m.groups());
    return all.extent(vocab) == vocab_size ? all : decltype(all)(slice<vocab>(all, 0, vocab_size));
}

}  // namespace scribe::parallel
