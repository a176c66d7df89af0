// scribe/ops/common.hpp — what every op family shares: the op tag that names an op
// in diagnostics, and the helpers that append a node and wrap it in a typed handle.
#pragma once

#include <array>
#include <cstdint>
#include <exception>
#include <utility>
#include <vector>

#include "../graph/tensor.hpp"

namespace scribe {

namespace detail {

// What an op returns after its diagnostic has rejected its operands: the
// compilation has already failed, so this never runs. It gives the call the type
// the op would have had, so code that uses the result adds no follow-on errors.
template <class R>
[[noreturn]] R rejected() {
    std::terminate();
}

// Appends `n` to `g` and returns it as a tensor<T, List...>.
template <class T, class List>
tensor_from<T, List> emit(graph& g, node n) {
    return tensor_from<T, List>(g, g.add(std::move(n)));
}

// For each slot of Target, its position in Source: the permutation that brings a
// tensor with dims Source into the order of Target.
template <class Target, class Source>
struct positions_impl;
template <class... T, class Source>
struct positions_impl<dims<T...>, Source> {
    static std::vector<std::int64_t> get() { return {static_cast<std::int64_t>(index_of<T, Source>)...}; }
};
template <class Target, class Source>
std::vector<std::int64_t> positions() {
    return positions_impl<Target, Source>::get();
}

inline bool is_identity(const std::vector<std::int64_t>& perm) {
    for (std::size_t i = 0; i < perm.size(); ++i)
        if (perm[i] != static_cast<std::int64_t>(i)) return false;
    return true;
}

inline node_id transpose_node(graph& g, node_id x, std::vector<std::int64_t> perm) {
    if (is_identity(perm)) return x;
    node n;
    n.kind = op::transpose;
    n.operands = {x};
    n.axes = std::move(perm);
    return g.add(std::move(n));
}

// x (whose dims are the set of Target, in the order Source) in Target's order.
template <class Target, class Source>
node_id align(graph& g, node_id x) {
    return transpose_node(g, x, positions<Target, Source>());
}

// A scalar broadcast to the shape `to`.
inline node_id broadcast_scalar(graph& g, node_id scalar, const shape& to) {
    node n;
    n.kind = op::broadcast;
    n.operands = {scalar};
    n.dims = to;
    return g.add(std::move(n));
}

// A scalar constant of dtype t.
inline node_id scalar_constant(graph& g, dtype t, double value) {
    node n;
    n.kind = op::constant;
    n.type = t;
    n.literal.resize(static_cast<std::size_t>(info(t).bytes));
    store_as(t, value, n.literal.data());
    return g.add(std::move(n));
}

}  // namespace detail
}  // namespace scribe
