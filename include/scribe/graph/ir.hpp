// scribe/graph/ir.hpp — untyped node builders: one function per op that fills a
// node and appends it (graph::add checks it and infers its shape).
//
// The gradient rules (graph/vjp.hpp) build the backward pass with these: they see
// the graph as nodes, not typed handles, because a rule serves every shape.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "graph.hpp"

namespace scribe::ir {

// By value: adding a node may move the graph's nodes.
inline shape dims_of(const graph& g, node_id x) { return g[x].dims; }
inline dtype type_of(const graph& g, node_id x) { return g[x].type; }

// A scalar constant.
inline node_id scalar(graph& g, dtype t, double value) {
    node n;
    n.kind = op::constant;
    n.type = t;
    n.literal.resize(static_cast<std::size_t>(info(t).bytes));
    store_as(t, value, n.literal.data());
    return g.add(std::move(n));
}

// x given the result shape `to`, x's dimensions at positions `axes` of it.
inline node_id broadcast(graph& g, node_id x, shape to, std::vector<std::int64_t> axes) {
    node n;
    n.kind = op::broadcast;
    n.operands = {x};
    n.dims = std::move(to);
    n.axes = std::move(axes);
    return g.add(std::move(n));
}

// `value` everywhere in a tensor of shape `to`.
inline node_id full(graph& g, dtype t, shape to, double value) {
    const auto s = scalar(g, t, value);
    return to.empty() ? s : broadcast(g, s, std::move(to), {});
}

inline node_id unary(graph& g, op k, node_id x) {
    node n;
    n.kind = k;
    n.operands = {x};
    return g.add(std::move(n));
}

// a op b, both of one shape.
inline node_id binary(graph& g, op k, node_id a, node_id b) {
    node n;
    n.kind = k;
    n.operands = {a, b};
    return g.add(std::move(n));
}

// x op value, the number made a tensor of x's dtype and shape.
inline node_id binary(graph& g, op k, node_id x, double value) {
    const auto c = full(g, type_of(g, x), dims_of(g, x), value);
    return binary(g, k, x, c);
}
inline node_id binary(graph& g, op k, double value, node_id x) {
    const auto c = full(g, type_of(g, x), dims_of(g, x), value);
    return binary(g, k, c, x);
}

inline node_id compare(graph& g, comparison c, node_id a, node_id b) {
    node n;
    n.kind = op::compare;
    n.direction = c;
    n.operands = {a, b};
    return g.add(std::move(n));
}

inline node_id select(graph& g, node_id p, node_id a, node_id b) {
    node n;
    n.kind = op::select;
    n.operands = {p, a, b};
    return g.add(std::move(n));
}

inline node_id convert(graph& g, node_id x, dtype t) {
    if (type_of(g, x) == t) return x;
    node n;
    n.kind = op::convert;
    n.type = t;
    n.operands = {x};
    return g.add(std::move(n));
}

// Result dimension i is x's dimension perm[i].
inline node_id transpose(graph& g, node_id x, std::vector<std::int64_t> perm) {
    bool identity = true;
    for (std::size_t i = 0; i < perm.size(); ++i) identity = identity && perm[i] == static_cast<std::int64_t>(i);
    if (identity) return x;
    node n;
    n.kind = op::transpose;
    n.operands = {x};
    n.axes = std::move(perm);
    return g.add(std::move(n));
}

// x's elements under the shape `to` (nothing when x has it already).
inline node_id reshape(graph& g, node_id x, shape to) {
    if (dims_of(g, x) == to) return x;
    node n;
    n.kind = op::reshape;
    n.operands = {x};
    n.dims = std::move(to);
    return g.add(std::move(n));
}

inline node_id reduce(graph& g, node_id x, std::vector<std::int64_t> axes, reducer r = reducer::sum) {
    if (axes.empty()) return x;
    node n;
    n.kind = op::reduce;
    n.reduction = r;
    n.operands = {x};
    n.axes = std::move(axes);
    return g.add(std::move(n));
}

// The sum of all of x's elements.
inline node_id sum_all(graph& g, node_id x) {
    std::vector<std::int64_t> axes;
    for (std::size_t i = 0; i < dims_of(g, x).size(); ++i) axes.push_back(static_cast<std::int64_t>(i));
    return reduce(g, x, std::move(axes));
}

// x with `low` and `high` elements of the scalar `value` at the ends of each dimension.
inline node_id pad(graph& g, node_id x, node_id value, std::vector<std::int64_t> low, std::vector<std::int64_t> high) {
    node n;
    n.kind = op::pad;
    n.operands = {x, value};
    n.starts = std::move(low);
    n.limits = std::move(high);
    return g.add(std::move(n));
}

inline node_id slice(graph& g, node_id x, std::vector<std::int64_t> starts, std::vector<std::int64_t> limits) {
    node n;
    n.kind = op::slice;
    n.operands = {x};
    n.starts = std::move(starts);
    n.limits = std::move(limits);
    return g.add(std::move(n));
}

// The operands (one dtype, the same dims but along `axis`) one after another along it.
inline node_id concatenate(graph& g, std::vector<node_id> xs, std::int64_t axis) {
    node n;
    n.kind = op::concatenate;
    n.operands = std::move(xs);
    n.axes = {axis};
    return g.add(std::move(n));
}

inline node_id dynamic_slice(graph& g, node_id x, const std::vector<node_id>& starts, std::vector<std::int64_t> sizes) {
    node n;
    n.kind = op::dynamic_slice;
    n.operands = {x};
    n.operands.insert(n.operands.end(), starts.begin(), starts.end());
    n.limits = std::move(sizes);
    return g.add(std::move(n));
}

inline node_id dynamic_update_slice(graph& g, node_id x, node_id update, const std::vector<node_id>& starts) {
    node n;
    n.kind = op::dynamic_update_slice;
    n.operands = {x, update};
    n.operands.insert(n.operands.end(), starts.begin(), starts.end());
    return g.add(std::move(n));
}

// (Under g.dot_autocast(), two f32 operands are multiplied in its dtype.)
inline node_id dot(graph& g, node_id a, node_id b, dot_dimensions d) {
    const auto cast = g.dot_autocast();
    const bool narrow = cast && type_of(g, a) == dtype::f32 && type_of(g, b) == dtype::f32;
    node n;
    n.kind = op::dot;
    n.operands = {narrow ? convert(g, a, *cast) : a, narrow ? convert(g, b, *cast) : b};
    n.dot = std::move(d);
    const auto product = g.add(std::move(n));
    return narrow ? convert(g, product, dtype::f32) : product;
}

// The rows of `table` picked along dimension `axis` by `ids`.
inline node_id gather(graph& g, node_id table, node_id ids, std::int64_t axis) {
    node n;
    n.kind = op::gather;
    n.operands = {table, ids};
    n.axes = {axis};
    return g.add(std::move(n));
}

// `table` with `updates` added at the rows `ids` along dimension `axis`.
inline node_id scatter_add(graph& g, node_id table, node_id ids, node_id updates, std::int64_t axis) {
    node n;
    n.kind = op::scatter;
    n.operands = {table, ids, updates};
    n.axes = {axis};
    return g.add(std::move(n));
}

inline node_id all_reduce(graph& g, node_id x, reducer r, std::vector<std::vector<std::int64_t>> groups) {
    node n;
    n.kind = op::all_reduce;
    n.reduction = r;
    n.operands = {x};
    n.replica_groups = std::move(groups);
    return g.add(std::move(n));
}

inline node_id replica_id(graph& g) {
    node n;
    n.kind = op::replica_id;
    return g.add(std::move(n));
}

}  // namespace scribe::ir
