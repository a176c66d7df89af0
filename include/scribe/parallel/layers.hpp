// scribe/parallel/layers.hpp — the tensor-parallel forms of the nn blocks (the
// Megatron layout). A model calls these with its mesh; at degree 1 they add no
// collective and are the plain nn blocks, so one model definition serves TP 1 and N.
//
//   column_linear   w[in..., out...] split along an output dim (Q/K/V, MLP
//                   up/gate): each rank computes its slice of the outputs; no
//                   communication.
//   row_linear      w[in..., out...] split along a contracted dim (attention out,
//                   MLP down): partial sums, all-reduced, then the bias, once.
//   Both take the same arguments: the contracted dims as template arguments, then
//   (x, w, [b,] mesh): column_linear<hidden>(x, w, b, m), row_linear<ffn>(y, w2, b2, m).
//   embedding       table[vocab, hidden] split along vocab (padded to a multiple
//                   of the degree): each rank looks up the ids it holds, zeros for
//                   the rest, and the all-reduce sum assembles the rows.
//   lm_head         logits of the rank's vocab slice, all-gathered along vocab,
//                   the padding cut off.
//   mlp             column_linear, the activation, row_linear.
//   gated_mlp       LLaMA's SwiGLU: gate and up column-parallel, down row-parallel.
//   kv_for_rank_heads  grouped-query attention when the degree does not divide
//                   the key/value heads: every rank holds them all (replicated)
//                   and picks those of its query heads by its rank (mesh::rank).
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

// Column-parallel: x[..., In...] . w[In..., out...] + b[out...], contracting the
// dimensions In (one or more). w and b are this rank's slices along an output
// dimension, and so is the result: no communication (the mesh is checked only).
template <auto In, auto... More, Tensor X, Tensor W, Tensor B>
auto column_linear(const X& x, const W& w, const B& b, const mesh& m) {
    m.check();
    auto y = dot<In, More...>(x, w);
    return y + broadcast_to(b, y);
}
// The same without a bias.
template <auto In, auto... More, Tensor X, Tensor W>
auto column_linear(const X& x, const W& w, const mesh& m) {
    m.check();
    return dot<In, More...>(x, w);
}

// Row-parallel: x[..., In...] . w[In..., out...] summed over the ranks, + b[out...].
// x and w are this rank's slices along a contracted dimension (x as a
// column-parallel layer left it); b is whole and added once, after the sum.
template <auto In, auto... More, Tensor X, Tensor W, Tensor B>
auto row_linear(const X& x, const W& w, const B& b, const mesh& m) {
    auto y = reduce_over(dot<In, More...>(x, w), m);
    return y + broadcast_to(b, y);
}
// The same without a bias.
template <auto In, auto... More, Tensor X, Tensor W>
auto row_linear(const X& x, const W& w, const mesh& m) {
    return reduce_over(dot<In, More...>(x, w), m);
}

// nn::mlp over the mesh: act(x . w_in + b_in) . w_out + b_out, w_in and b_in split
// along ffn (column), w_out along ffn (row), b_out whole.
template <Tensor X, Tensor W1, Tensor B1, Tensor W2, Tensor B2, class Act>
auto mlp(const X& x, const W1& w_in, const B1& b_in, const W2& w_out, const B2& b_out, Act act, const mesh& m) {
    return row_linear<ffn>(act(column_linear<hidden>(x, w_in, b_in, m)), w_out, b_out, m);
}

// The gated MLP of LLaMA (SwiGLU with act = SiLU): (act(x . w_gate) * (x . w_up)) . w_down,
// w_gate and w_up split along ffn (column), w_down along ffn (row). No biases.
template <Tensor X, Tensor W1, Tensor W2, Tensor W3, class Act>
auto gated_mlp(const X& x, const W1& w_gate, const W2& w_up, const W3& w_down, Act act, const mesh& m) {
    return row_linear<ffn>(act(column_linear<hidden>(x, w_gate, m)) * column_linear<hidden>(x, w_up, m), w_down, m);
}

// Grouped-query attention when the key/value heads are replicated (the degree
// does not divide them): kv[..., kv_heads (all), head_dim] cut to the key/value
// head of each of this rank's query heads, [..., kv_heads (one per query head),
// head_dim], rank r's query heads being [r * H, (r + 1) * H) of n_head.
template <Tensor K>
auto kv_for_rank_heads(const K& kv, std::int64_t n_head, std::int64_t local_heads, const mesh& m = {}) {
    graph& g = kv.owner();
    const auto per_kv = n_head / kv.extent(kv_heads);
    auto head = g.iota(s32[heads], heads) +
                broadcast_to(convert<s32>(m.rank(g)) * static_cast<double>(local_heads), g.iota(s32[heads], heads));
    return rename<heads, kv_heads>(gather<kv_heads>(kv, head / static_cast<double>(per_kv)));
}

// Token embedding from this rank's rows of the table, [batch, seq, hidden]:
// rows [rank * V, (rank + 1) * V) where V is the table's vocab extent.
template <auto Width = hidden, Tensor Tb, Tensor I>
auto embedding(const Tb& table, const I& ids, const mesh& m) {
    if (m.degree == 1) return nn::embedding<Width>(table, ids);
    graph& g = table.owner();
    const auto rows = table.extent(vocab);
    auto first = convert<s32>(m.rank(g)) * static_cast<double>(rows);
    auto local = ids - broadcast_to(first, ids);
    auto clamped = minimum(maximum(local, 0), rows - 1);
    auto found = nn::embedding<Width>(table, clamped);
    auto mine = broadcast_to(eq(local, clamped), found);  // the id is one of this rank's rows
    using T = typename Tb::dtype_type;
    auto none = broadcast_to(g.constant(T{}, 0.0), found);
    return reduce_over(select(mine, found, none), m);
}

// The ranks' slices of logits[..., vocab] joined and cut to `vocab_size`.
template <Tensor L>
auto gather_vocab(const L& logits, std::int64_t vocab_size, const mesh& m) {
    if (m.degree == 1) return logits;
    auto all = all_gather<vocab>(logits, m.groups());
    return all.extent(vocab) == vocab_size ? all : decltype(all)(slice<vocab>(all, 0, vocab_size));
}

// logits[..., vocab] = x[..., hidden] . w[vocab, hidden], the ranks' slices joined
// and cut to the real vocabulary of `vocab_size` tokens.
template <auto Width = hidden, Tensor X, Tensor Wt>
auto lm_head(const X& x, const Wt& w, std::int64_t vocab_size, const mesh& m) {
    return gather_vocab(nn::lm_head<Width>(x, w), vocab_size, m);
}

// The same with a bias b[vocab] (this rank's slice).
template <auto Width = hidden, Tensor X, Tensor Wt, Tensor B>
auto lm_head(const X& x, const Wt& w, const B& b, std::int64_t vocab_size, const mesh& m) {
    auto logits = nn::lm_head<Width>(x, w);
    return gather_vocab(logits + broadcast_to(b, logits), vocab_size, m);
}

}  // namespace scribe::parallel
