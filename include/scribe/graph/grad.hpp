// scribe/graph/grad.hpp — reverse-mode differentiation as a graph transform.
//
// gradients(g, loss, wrt) appends the backward pass of `loss` (a float scalar)
// to g itself and returns, for each node of `wrt`, the node holding dL/d(that
// node): same dtype, same dimensions in the same order. The forward values stay
// where they are and the backward nodes read them (or recompute the cheap ones:
// rematerialisation, below), so forward and backward (and later an optimizer
// update) are one graph: one HLO module, one CPU run.
//
// The walk is the textbook one (JAX's backward_pass, ggml's build_backward): the
// loss's cotangent is 1; nodes are visited from the loss back to the earliest
// `wrt`, each node that lies between a `wrt` and the loss hands its cotangent to
// its operands through its op's rule (graph/vjp.hpp), and the shares a value gets
// from several users are added. Only float values carry cotangents; an op with
// no rule (compare, argmax, floor, stop_gradient, ...) passes none.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "vjp.hpp"

namespace scribe {

namespace detail {

// "parameter `w`" or "node 12 (multiply)", for errors.
inline std::string describe_node(const graph& g, node_id id) {
    const auto& n = g[id];
    if (n.kind == op::parameter) return "parameter " + ticked(n.label);
    return "node " + std::to_string(id) + " (" + std::string(info(n.kind).name) + " " + std::string(name(n.type)) +
           to_string(n.dims) + ")";
}

}  // namespace detail

// A graph run by several replicas (tensor-parallel ranks) follows SPMD rules: a
// value is *varying* when replicas may hold different values (a rank's shard of
// a weight, what replica_id picks, what is computed from them) and *replicated*
// otherwise (an input every rank has whole, the result of an all-reduce or
// all-gather). The loss must be replicated, and every replica computes the
// gradient of that one loss:
//   - all_reduce's and all_gather's rules hand the result's cotangent back to
//     each replica's operand (vjp.hpp);
//   - a replicated value read by varying computations (x entering a
//     column-parallel layer) gets the sum over the replicas of what each
//     replica's computations give it, by an all-reduce the transform adds
//     (Megatron's "f": identity forward, all-reduce backward).
// So a weight shard's gradient is the shard of the whole model's gradient, and a
// replicated weight's is the whole model's on every replica.
struct spmd {
    std::vector<node_id> varying;  // the parameters each replica holds its own part of
    // The replicas that share one loss, as the graph's collectives group them
    // (empty: taken from the graph's collectives, which must all agree).
    std::vector<std::vector<std::int64_t>> replica_groups;
};

namespace detail {

// Which values may differ between replicas, and the replica groups the
// transform's all-reduces use.
inline std::vector<bool> varying_values(const graph& g, std::size_t count, spmd& s) {
    std::vector<bool> varying(count, false);
    for (auto p : s.varying) {
        if (g[p].kind != op::parameter) throw error("grad: " + describe_node(g, p) + " is marked varying but is not a parameter");
        if (static_cast<std::size_t>(p) < count) varying[static_cast<std::size_t>(p)] = true;
    }
    for (std::size_t i = 0; i < count; ++i) {
        const auto& n = g[static_cast<node_id>(i)];
        if (n.kind == op::all_reduce || n.kind == op::all_gather) {
            if (s.replica_groups.empty()) s.replica_groups = n.replica_groups;
            else if (s.replica_groups != n.replica_groups)
                throw error("grad: the graph's collectives use different replica groups; say which replicas share the loss "
                            "(spmd::replica_groups)");
            continue;  // replicated within its groups
        }
        if (n.kind == op::replica_id) varying[i] = true;
        for (auto o : n.operands) varying[i] = varying[i] || varying[static_cast<std::size_t>(o)];
    }
    return varying;
}

}  // namespace detail

// Appends d(loss)/d(w) for every w of `wrt` to g; returns their ids, in order.
// Throws scribe::error, naming the value, when the loss is not a float scalar,
// when a w is not a float, or when the loss does not depend on a w through
// differentiable ops (its gradient would be zero everywhere: usually a mistake,
// such as a weight the model never reads; a gradient of zeros is never made up).
// `parallel` says which parameters differ between replicas when g is run by
// several (above).
inline std::vector<node_id> gradients(graph& g, node_id loss, const std::vector<node_id>& wrt, spmd parallel = {}) {
    using detail::describe_node;
    if (!g[loss].dims.empty() || !is_float(g[loss].type))
        throw error("grad: the loss must be a float scalar; " + describe_node(g, loss) +
                    " is not (reduce it first, e.g. with reduce_sum or mean)");
    const auto count = static_cast<std::size_t>(loss) + 1;  // nodes after the loss cannot affect it
    std::vector<bool> is_wrt(count, false);
    for (auto w : wrt) {
        const auto& n = g[w];
        if (!is_float(n.type))
            throw error("grad: gradients are taken with respect to float values; " + describe_node(g, w) + " is " +
                        std::string(name(n.type)));
        if (static_cast<std::size_t>(w) >= count)
            throw error("grad: the loss does not depend on " + describe_node(g, w) + ": it was made after the loss");
        is_wrt[static_cast<std::size_t>(w)] = true;
    }
    auto carries = [&](const node& n) { return is_float(n.type) && info(n.kind).differentiable; };

    // depends: a float value computed from a wrt through differentiable ops.
    std::vector<bool> depends(count, false);
    for (std::size_t i = 0; i < count; ++i) {
        const auto& n = g[static_cast<node_id>(i)];
        if (is_wrt[i]) depends[i] = true;
        else if (carries(n))
            for (auto o : n.operands) depends[i] = depends[i] || (depends[static_cast<std::size_t>(o)] && is_float(g[o].type));
    }
    // reaches: the loss is computed from it by differentiable ops; touches: by any ops.
    std::vector<bool> reaches(count, false), touches(count, false);
    reaches[count - 1] = touches[count - 1] = true;
    for (std::size_t i = count; i-- > 0;) {
        const auto& n = g[static_cast<node_id>(i)];
        for (auto o : n.operands) {
            const auto k = static_cast<std::size_t>(o);
            touches[k] = touches[k] || touches[i];
            reaches[k] = reaches[k] || (reaches[i] && carries(n) && is_float(g[o].type));
        }
    }
    for (auto w : wrt) {
        const auto k = static_cast<std::size_t>(w);
        if (!touches[k])
            throw error("grad: the loss does not depend on " + describe_node(g, w) +
                        " (nothing that the loss is computed from reads it)");
        if (!reaches[k])
            throw error("grad: the loss depends on " + describe_node(g, w) +
                        " only through ops without a gradient (compare, argmax, floor, integer ops, stop_gradient), "
                        "so its gradient is zero everywhere");
    }

    const auto varying = detail::varying_values(g, count, parallel);
    if (varying[count - 1])
        throw error("grad: the loss differs between replicas (it is computed from a varying value without an all-reduce); "
                    "every replica must compute the same loss");

    // The backward walk, appending to `g` (the graph, or a scratch copy of it):
    // each rule reads the forward values through `primal`.
    auto walk = [&](graph& g, const std::function<node_id(node_id)>& primal) {
        // ct: the cotangent so far; spread: the shares a replicated value got from
        // varying users, summed over the replicas (one all-reduce) when it is reached.
        std::vector<node_id> ct(count, -1), spread(count, -1);
        // A share that scatter-adds into zeros (a gather's: cross_entropy's picked
        // logits), perhaps reshaped: its scatter, else -1.
        auto scatter_into_zeros = [&](node_id v) -> node_id {
            if (g[v].kind == op::reshape) v = g[v].operands[0];
            const auto& s = g[v];
            if (s.kind != op::scatter || g[s.operands[0]].kind != op::broadcast) return -1;
            const auto& z = g[g[s.operands[0]].operands[0]];
            if (z.kind != op::constant || !z.dims.empty() || load_as_double(z.type, z.literal.data()) != 0.0) return -1;
            return v;
        };
        // A share that is a value zero-padded along one axis (a slice's: the
        // three parts of a fused q/k/v projection): that axis, the value, the
        // range it covers.
        struct padded {
            std::size_t axis;
            node_id x;
            std::int64_t from, to;
        };
        auto as_padded = [&](node_id v) -> std::optional<padded> {
            const auto& n = g[v];
            if (n.kind != op::pad) return std::nullopt;
            const auto& z = g[n.operands[1]];
            if (z.kind != op::constant || load_as_double(z.type, z.literal.data()) != 0.0) return std::nullopt;
            std::optional<std::size_t> axis;
            for (std::size_t k = 0; k < n.starts.size(); ++k) {
                if (n.starts[k] == 0 && n.limits[k] == 0) continue;
                if (axis || n.starts[k] < 0 || n.limits[k] < 0) return std::nullopt;
                axis = k;
            }
            if (!axis) return std::nullopt;
            return padded{*axis, n.operands[0], n.starts[*axis], n.dims[*axis].extent - n.limits[*axis]};
        };
        // Two such shares of disjoint ranges along one axis: one concatenation of
        // the values (and zeros between them), padded to the whole; a third share
        // joins the same concatenation. One pass, where pads and sums made three.
        auto join_padded = [&](node_id a, node_id b) -> node_id {
            auto pa = as_padded(a), pb = as_padded(b);
            if (!pa || !pb || pa->axis != pb->axis) return -1;
            if (pa->from > pb->from) std::swap(pa, pb);
            if (pa->to > pb->from) return -1;  // they overlap
            const auto axis = pa->axis;
            const shape whole = g[a].dims;
            const auto type = g[a].type;
            std::vector<node_id> parts;
            auto add_parts = [&](node_id x) {
                const auto& n = g[x];
                if (n.kind == op::concatenate && static_cast<std::size_t>(n.axes[0]) == axis)
                    parts.insert(parts.end(), n.operands.begin(), n.operands.end());
                else
                    parts.push_back(x);
            };
            add_parts(pa->x);
            if (pb->from > pa->to) {
                shape gap = g[pa->x].dims;
                gap[axis].extent = pb->from - pa->to;
                parts.push_back(ir::full(g, type, std::move(gap), 0.0));
            }
            add_parts(pb->x);
            node cat;
            cat.kind = op::concatenate;
            cat.operands = std::move(parts);
            cat.axes = {static_cast<std::int64_t>(axis)};
            const auto joined = g.add(std::move(cat));
            std::vector<std::int64_t> low(whole.size(), 0), high(whole.size(), 0);
            low[axis] = pa->from;
            high[axis] = whole[axis].extent - pb->to;
            if (low[axis] == 0 && high[axis] == 0) return joined;
            return ir::pad(g, joined, ir::scalar(g, type, 0.0), std::move(low), std::move(high));
        };
        // a + b: padded shares of disjoint ranges joined; a gather's share (a
        // scatter-add into zeros) scatter-added into the other share instead (no
        // buffer of zeros, no sum of two full-size values); else an add.
        auto sum = [&](node_id a, node_id b) -> node_id {
            if (const auto joined = join_padded(a, b); joined >= 0) return joined;
            for (int turn = 0; turn < 2; ++turn, std::swap(a, b)) {
                const auto s = scatter_into_zeros(b);
                if (s < 0) continue;
                const node scatter = g[s];
                const shape b_dims = g[b].dims;
                const auto table = ir::reshape(g, a, scatter.dims);
                return ir::reshape(g, ir::scatter_add(g, table, scatter.operands[1], scatter.operands[2], scatter.axes[0]), b_dims);
            }
            return ir::binary(g, op::add, a, b);
        };
        auto add_to = [&](std::vector<node_id>& into, std::size_t o, node_id c) { into[o] = into[o] < 0 ? c : sum(into[o], c); };
        auto settle = [&](std::size_t i) {
            if (spread[i] < 0) return;
            add_to(ct, i, ir::all_reduce(g, spread[i], reducer::sum, parallel.replica_groups));
            spread[i] = -1;
        };
        ct[count - 1] = ir::scalar(g, g[loss].type, 1.0);
        for (std::size_t i = count; i-- > 0;) {
            settle(i);
            if (ct[i] < 0 || !depends[i]) continue;
            const auto& n = g[static_cast<node_id>(i)];
            if (n.operands.empty()) continue;
            vjp_context c{g, n, static_cast<node_id>(i), ct[i], {}, {}, &primal};
            for (auto o : c.n.operands) c.wanted.push_back(depends[static_cast<std::size_t>(o)] && reaches[static_cast<std::size_t>(o)]);
            c.given.assign(c.wanted.size(), -1);
            vjp_rule_for(c.n.kind).rule(c);
            for (std::size_t k = 0; k < c.given.size(); ++k) {
                if (c.given[k] < 0) continue;
                const auto o = static_cast<std::size_t>(c.n.operands[k]);
                const auto& want = g[c.n.operands[k]];
                const auto& got = g[c.given[k]];
                if (got.dims != want.dims || got.type != want.type)  // a rule's bug, not the user's
                    throw error("grad: internal: the rule of " + std::string(info(c.n.kind).name) + " gave operand " +
                                std::to_string(k) + " a cotangent " + std::string(name(got.type)) + to_string(got.dims) +
                                " for a value " + std::string(name(want.type)) + to_string(want.dims));
                add_to(varying[i] && !varying[o] ? spread : ct, o, c.given[k]);
            }
        }
        std::vector<node_id> out;
        for (auto w : wrt) out.push_back(ct[static_cast<std::size_t>(w)]);
        return out;
    };

    // Rematerialisation (jax.checkpoint's idea, decided here): a float
    // element-wise value with one forward user, that the backward pass reads, is
    // recomputed there from its operands (themselves recomputed the same way)
    // when what it is recomputed from is kept for the backward pass anyway (the
    // rules read it) or is small (a broadcast, a constant). So GELU's tanh form
    // keeps its input only, a norm its centred input, softmax its exponentials,
    // where each op of the chain kept its value until the backward pass; the
    // copies run fused into the backward's element-wise work, and are equal to
    // the values they replace bit for bit (the same ops on the same values). A
    // value that would keep something else alive instead (tanh(x . w), whose x . w
    // nothing else reads) is kept as it is. A first walk over a scratch copy of
    // the graph finds what the rules read.
    std::vector<int> forward_users(count, 0);
    for (std::size_t i = 0; i < count; ++i) {
        const auto& ops = g[static_cast<node_id>(i)].operands;
        for (std::size_t k = 0; k < ops.size(); ++k)
            if (std::find(ops.begin(), ops.begin() + static_cast<std::ptrdiff_t>(k), ops[k]) == ops.begin() + static_cast<std::ptrdiff_t>(k))
                ++forward_users[static_cast<std::size_t>(ops[k])];
    }
    std::vector<bool> read(count, false);
    {
        graph scratch = g;
        (void)walk(scratch, [&](node_id v) {
            if (static_cast<std::size_t>(v) < count) read[static_cast<std::size_t>(v)] = true;
            return v;
        });
    }
    // 0: not decided; 1: recomputed; 2: read as it is.
    std::vector<char> decided(count, 0);
    std::function<bool(node_id, int)> recomputed = [&](node_id v, int depth) -> bool {
        const auto k = static_cast<std::size_t>(v);
        if (k >= count) return false;
        if (decided[k]) return decided[k] == 1;
        const auto& n = g[v];
        bool yes = depth < 32 && forward_users[k] == 1 && is_float(n.type) && info(n.kind).fusible &&
                   (n.kind != op::convert || is_float(g[n.operands[0]].type));
        for (std::size_t j = 0; yes && j < n.operands.size(); ++j) {
            const auto o = n.operands[j];
            const auto& on = g[o];
            yes = on.kind == op::constant || on.kind == op::broadcast || recomputed(o, depth + 1) || read[static_cast<std::size_t>(o)];
        }
        decided[k] = yes ? 1 : 2;
        return yes;
    };
    std::vector<node_id> copy_of(count, -1);
    std::function<node_id(node_id)> primal = [&](node_id v) -> node_id {
        if (!recomputed(v, 0)) return v;
        auto& made = copy_of[static_cast<std::size_t>(v)];
        if (made >= 0) return made;
        node copy = g[v];
        for (auto& o : copy.operands) o = primal(o);
        const auto id = g.add(std::move(copy));
        copy_of[static_cast<std::size_t>(v)] = id;
        return id;
    };
    return walk(g, primal);
}

}  // namespace scribe
