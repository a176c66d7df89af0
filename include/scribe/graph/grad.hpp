// scribe/graph/grad.hpp — reverse-mode differentiation as a graph transform.
//
// gradients(g, loss, wrt) appends the backward pass of `loss` (a float scalar)
// to g itself and returns, for each node of `wrt`, the node holding dL/d(that
// node): same dtype, same dimensions in the same order. The forward values stay
// where they are and the backward nodes read them, so forward and backward (and
// later an optimizer update) are one graph: one HLO module, one CPU run.
//
// The walk is the textbook one (JAX's backward_pass, ggml's build_backward): the
// loss's cotangent is 1; nodes are visited from the loss back to the earliest
// `wrt`, each node that lies between a `wrt` and the loss hands its cotangent to
// its operands through its op's rule (graph/vjp.hpp), and the shares a value gets
// from several users are added. Only float values carry cotangents; an op with
// no rule (compare, argmax, floor, stop_gradient, ...) passes none.
#pragma once

#include <cstdint>
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

    // ct: the cotangent so far; spread: the shares a replicated value got from
    // varying users, summed over the replicas (one all-reduce) when it is reached.
    std::vector<node_id> ct(count, -1), spread(count, -1);
    auto add_to = [&](std::vector<node_id>& into, std::size_t o, node_id c) {
        into[o] = into[o] < 0 ? c : ir::binary(g, op::add, into[o], c);
    };
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
        vjp_context c{g, n, static_cast<node_id>(i), ct[i], {}, {}};
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
}

}  // namespace scribe
