// scribe/graph/vjp.hpp — the gradient rule of every differentiable op: its
// vector-Jacobian product, one function per op, named after it.
//
// A rule gets the node, its value y and the cotangent ct of y (dL/dy, with y's
// shape and dtype), and gives each operand that wants one its share of the
// cotangent (dL/dx through this use of x), built from graph ops with
// graph/ir.hpp. graph/grad.hpp walks the graph backwards, calls the rules and
// sums the shares. Rules follow JAX's: the transpose of broadcast is a sum, of
// slice a pad, of gather a scatter-add, of dot a dot and a transpose.
//
// Non-differentiable ops (compare, argmax, iota, floor, sign, bitwise ops,
// replica_id, stop_gradient) have no rule and pass no gradient; integer and pred
// values never carry one. The op table's `differentiable` fact and the rules here
// are kept in step by the static_assert at the end.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numbers>
#include <utility>
#include <vector>

#include "ir.hpp"

namespace scribe {

struct vjp_context {
    graph& g;
    node n;                    // the node (a copy: rules append to the graph)
    node_id self;              // its id
    node_id ct;                // dL/dy
    std::vector<bool> wanted;  // per operand: whether it needs a cotangent
    std::vector<node_id> given;  // per operand: its share, or -1
    // How a rule reads a forward value: the value itself, or a copy recomputed
    // in the backward pass (grad.hpp's rematerialisation); null: the value.
    const std::function<node_id(node_id)>* primal = nullptr;

    // The values the rule reads: operand k, and the node's own value y.
    node_id x(std::size_t k) const { return primal ? (*primal)(n.operands[k]) : n.operands[k]; }
    node_id y() const { return primal ? (*primal)(self) : self; }
    shape dims(node_id v) const { return g[v].dims; }  // by value: rules add nodes
    shape xdims(std::size_t k) const { return g[n.operands[k]].dims; }  // operand k's, without reading it
    dtype type() const { return n.type; }

    // Operand k's share, made by `make` only when operand k wants one.
    template <class F>
    void give(std::size_t k, F&& make) {
        if (!wanted[k]) return;
        const node_id c = make();
        if (given[k] < 0) given[k] = c;
        else given[k] = ir::binary(g, op::add, given[k], c);
    }

    // Shorthands for the rules.
    node_id mul(node_id a, node_id b) { return ir::binary(g, op::mul, a, b); }
    node_id mul(node_id a, double v) { return ir::binary(g, op::mul, a, v); }
    node_id div(node_id a, node_id b) { return ir::binary(g, op::div, a, b); }
    node_id add(node_id a, double v) { return ir::binary(g, op::add, a, v); }
    node_id neg(node_id a) { return ir::unary(g, op::neg, a); }
    node_id zeros(const shape& s) { return ir::full(g, type(), s, 0.0); }
};

using vjp_rule = void (*)(vjp_context&);

namespace vjp {

// --- element-wise: ct times the derivative ------------------------------------

inline void convert(vjp_context& c) {
    c.give(0, [&] { return ir::convert(c.g, c.ct, c.g[c.n.operands[0]].type); });
}
inline void neg(vjp_context& c) {
    c.give(0, [&] { return c.neg(c.ct); });
}
inline void abs(vjp_context& c) {  // sign(x): 0 at 0, as JAX and PyTorch
    c.give(0, [&] { return c.mul(c.ct, ir::unary(c.g, op::sign, c.x(0))); });
}
inline void exp(vjp_context& c) {
    c.give(0, [&] { return c.mul(c.ct, c.y()); });
}
inline void expm1(vjp_context& c) {
    c.give(0, [&] { return c.mul(c.ct, c.add(c.y(), 1.0)); });
}
inline void log(vjp_context& c) {
    c.give(0, [&] { return c.div(c.ct, c.x(0)); });
}
inline void log1p(vjp_context& c) {
    c.give(0, [&] { return c.div(c.ct, c.add(c.x(0), 1.0)); });
}
inline void sqrt(vjp_context& c) {  // 1 / (2 sqrt(x))
    c.give(0, [&] { return c.div(c.ct, c.mul(c.y(), 2.0)); });
}
inline void rsqrt(vjp_context& c) {  // -x^(-3/2) / 2 = -y / (2x)
    c.give(0, [&] { return c.mul(c.ct, c.mul(c.div(c.y(), c.x(0)), -0.5)); });
}
inline void tanh(vjp_context& c) {  // 1 - y^2
    c.give(0, [&] { return c.mul(c.ct, ir::binary(c.g, op::sub, 1.0, c.mul(c.y(), c.y()))); });
}
inline void logistic(vjp_context& c) {  // y (1 - y)
    c.give(0, [&] { return c.mul(c.ct, c.mul(c.y(), ir::binary(c.g, op::sub, 1.0, c.y()))); });
}
inline void sin(vjp_context& c) {
    c.give(0, [&] { return c.mul(c.ct, ir::unary(c.g, op::cos, c.x(0))); });
}
inline void cos(vjp_context& c) {
    c.give(0, [&] { return c.neg(c.mul(c.ct, ir::unary(c.g, op::sin, c.x(0)))); });
}
inline void erf(vjp_context& c) {  // 2/sqrt(pi) exp(-x^2)
    c.give(0, [&] {
        auto e = ir::unary(c.g, op::exp, c.neg(c.mul(c.x(0), c.x(0))));
        return c.mul(c.ct, c.mul(e, 2.0 * std::numbers::inv_sqrtpi));
    });
}

inline void add(vjp_context& c) {
    c.give(0, [&] { return c.ct; });
    c.give(1, [&] { return c.ct; });
}
inline void sub(vjp_context& c) {
    c.give(0, [&] { return c.ct; });
    c.give(1, [&] { return c.neg(c.ct); });
}
inline void mul(vjp_context& c) {
    c.give(0, [&] { return c.mul(c.ct, c.x(1)); });
    c.give(1, [&] { return c.mul(c.ct, c.x(0)); });
}
inline void div(vjp_context& c) {  // d/db a/b = -a/b^2 = -y/b
    c.give(0, [&] { return c.div(c.ct, c.x(1)); });
    c.give(1, [&] { return c.neg(c.mul(c.ct, c.div(c.y(), c.x(1)))); });
}

// maximum and minimum: the cotangent goes to the operand chosen; on a tie each
// gets half (as JAX and torch.maximum).
inline void chooser(vjp_context& c, comparison wins) {
    auto tie = ir::compare(c.g, comparison::eq, c.x(0), c.x(1));
    auto first = ir::compare(c.g, wins, c.x(0), c.x(1));
    auto half = c.mul(c.ct, 0.5);
    auto zero = c.zeros(c.n.dims);
    c.give(0, [&] { return ir::select(c.g, tie, half, ir::select(c.g, first, c.ct, zero)); });
    c.give(1, [&] { return ir::select(c.g, tie, half, ir::select(c.g, first, zero, c.ct)); });
}
inline void max(vjp_context& c) { chooser(c, comparison::gt); }
inline void min(vjp_context& c) { chooser(c, comparison::lt); }

// a^b: d/da = b a^(b-1) (0 where b = 0, so 0^0 gives 0, not 0 * inf);
// d/db = y log(a) (0 where a = 0), as JAX.
inline void pow(vjp_context& c) {
    auto& g = c.g;
    const auto a = c.x(0), b = c.x(1);
    c.give(0, [&] {
        auto d = c.mul(b, ir::binary(g, op::pow, a, ir::binary(g, op::sub, b, 1.0)));
        auto b_zero = ir::compare(g, comparison::eq, b, c.zeros(c.n.dims));
        return c.mul(c.ct, ir::select(g, b_zero, c.zeros(c.n.dims), d));
    });
    c.give(1, [&] {
        auto a_zero = ir::compare(g, comparison::eq, a, c.zeros(c.n.dims));
        auto safe = ir::select(g, a_zero, ir::full(g, c.type(), c.n.dims, 1.0), a);
        return c.mul(c.ct, c.mul(c.y(), ir::unary(g, op::log, safe)));
    });
}

inline void select(vjp_context& c) {
    auto zero = c.zeros(c.n.dims);
    c.give(1, [&] { return ir::select(c.g, c.x(0), c.ct, zero); });
    c.give(2, [&] { return ir::select(c.g, c.x(0), zero, c.ct); });
}

// --- layout --------------------------------------------------------------------

// The transpose of a broadcast sums over the dimensions it added.
inline void broadcast(vjp_context& c) {
    c.give(0, [&] {
        std::vector<std::int64_t> added;
        for (std::int64_t i = 0; i < static_cast<std::int64_t>(c.n.dims.size()); ++i)
            if (std::find(c.n.axes.begin(), c.n.axes.end(), i) == c.n.axes.end()) added.push_back(i);
        return ir::reduce(c.g, c.ct, std::move(added));
    });
}
inline void transpose(vjp_context& c) {
    c.give(0, [&] {
        std::vector<std::int64_t> inverse(c.n.axes.size());
        for (std::size_t i = 0; i < c.n.axes.size(); ++i) inverse[static_cast<std::size_t>(c.n.axes[i])] = static_cast<std::int64_t>(i);
        return ir::transpose(c.g, c.ct, std::move(inverse));
    });
}
inline void reshape(vjp_context& c) {
    c.give(0, [&] { return ir::reshape(c.g, c.ct, c.xdims(0)); });
}

// The dot's cotangent contracted with one operand gives the other's; its
// dimensions come out as [batch, free of ct, remaining of the operand] and are
// transposed into the target's order, then named as the target names them.
namespace detail {

inline std::vector<std::int64_t> free_positions(std::size_t rank, const std::vector<std::int64_t>& contracting,
                                                const std::vector<std::int64_t>& batch) {
    std::vector<std::int64_t> out;
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(rank); ++i)
        if (std::find(contracting.begin(), contracting.end(), i) == contracting.end() &&
            std::find(batch.begin(), batch.end(), i) == batch.end())
            out.push_back(i);
    return out;
}

// The cotangent of the dot's operand `target` (0: lhs, 1: rhs): the dot of ct
// and the other operand over the other's free dimensions, batched as the dot
// was, the other operand kept on its side so that y = x . w gives dw without a
// transpose.
inline node_id dot_operand(vjp_context& c, int target) {
    const auto& d = c.n.dot;
    const bool lhs = target == 0;
    const auto& t_contract = lhs ? d.lhs_contracting : d.rhs_contracting;
    const auto& o_contract = lhs ? d.rhs_contracting : d.lhs_contracting;
    const auto& t_batch = lhs ? d.lhs_batch : d.rhs_batch;
    const auto& o_batch = lhs ? d.rhs_batch : d.lhs_batch;
    const node_id o = c.x(lhs ? 1 : 0);
    const shape t_dims = c.xdims(lhs ? 0 : 1);
    const auto t_free = free_positions(t_dims.size(), t_contract, t_batch);
    const auto o_free = free_positions(c.dims(o).size(), o_contract, o_batch);
    const auto nb = static_cast<std::int64_t>(t_batch.size());
    // ct is [batch, the lhs's free dimensions, the rhs's free dimensions].
    const std::int64_t o_first = lhs ? nb + static_cast<std::int64_t>(t_free.size()) : nb;
    std::vector<std::int64_t> ct_batch, ct_contract, o_batch_pos, o_contract_pos;
    for (std::int64_t i = 0; i < nb; ++i) {
        ct_batch.push_back(i);
        o_batch_pos.push_back(o_batch[static_cast<std::size_t>(i)]);
    }
    for (std::size_t j = 0; j < o_free.size(); ++j) {
        ct_contract.push_back(o_first + static_cast<std::int64_t>(j));
        o_contract_pos.push_back(o_free[j]);
    }
    // Where each of the other's remaining (contracted) dimensions lands in the target.
    std::vector<std::int64_t> o_rest = o_contract, rest_lands;
    std::sort(o_rest.begin(), o_rest.end());
    for (auto p : o_rest)
        rest_lands.push_back(t_contract[static_cast<std::size_t>(std::find(o_contract.begin(), o_contract.end(), p) - o_contract.begin())]);
    // dot(ct, other) gives [batch, the target's free dimensions, the other's
    // contracted ones]; dot(other, ct) the last two the other way round. The
    // target's own side is the default (x . w's dw = x^T . ct with no transpose);
    // the other order when it lands in the target's layout and the default does
    // not (the tied LM head's dw = ct^T . x, [vocab, hidden] as wte is stored).
    auto lands_of = [&](bool ct_first) {
        std::vector<std::int64_t> l(t_batch.begin(), t_batch.end());
        const auto& first = ct_first ? t_free : rest_lands;
        const auto& second = ct_first ? rest_lands : t_free;
        l.insert(l.end(), first.begin(), first.end());
        l.insert(l.end(), second.begin(), second.end());
        return l;
    };
    auto in_order = [](const std::vector<std::int64_t>& l) { return std::is_sorted(l.begin(), l.end()); };
    bool ct_first = lhs;
    if (!in_order(lands_of(ct_first)) && in_order(lands_of(!ct_first))) ct_first = !ct_first;
    const auto lands = lands_of(ct_first);
    const node_id r = ct_first ? ir::dot(c.g, c.ct, o, {ct_contract, o_contract_pos, ct_batch, o_batch_pos})
                               : ir::dot(c.g, o, c.ct, {o_contract_pos, ct_contract, o_batch_pos, ct_batch});
    std::vector<std::int64_t> perm(lands.size());
    for (std::size_t i = 0; i < lands.size(); ++i) perm[static_cast<std::size_t>(lands[i])] = static_cast<std::int64_t>(i);
    return ir::reshape(c.g, ir::transpose(c.g, r, std::move(perm)), t_dims);
}

}  // namespace detail

inline void dot(vjp_context& c) {
    c.give(0, [&] { return detail::dot_operand(c, 0); });
    c.give(1, [&] { return detail::dot_operand(c, 1); });
}

// The dimensions of x that a reduce over `axes` keeps, as broadcast positions.
inline std::vector<std::int64_t> kept_positions(std::size_t rank, const std::vector<std::int64_t>& axes) {
    std::vector<std::int64_t> kept;
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(rank); ++i)
        if (std::find(axes.begin(), axes.end(), i) == axes.end()) kept.push_back(i);
    return kept;
}

// sum: ct spread back over the reduced dimensions. max and min: ct to the
// elements that equal the result, split evenly between ties (as JAX and PyTorch).
inline void reduce(vjp_context& c) {
    const auto xs = c.xdims(0);
    const auto kept = kept_positions(xs.size(), c.n.axes);
    c.give(0, [&] {
        auto spread = [&](node_id v) { return ir::broadcast(c.g, v, xs, kept); };
        if (c.n.reduction == reducer::sum) return spread(c.ct);
        auto hit = ir::compare(c.g, comparison::eq, c.x(0), spread(c.y()));
        auto ones = ir::select(c.g, hit, ir::full(c.g, c.type(), xs, 1.0), ir::full(c.g, c.type(), xs, 0.0));
        auto count = ir::reduce(c.g, ones, c.n.axes);
        return c.mul(ones, spread(c.div(c.ct, count)));
    });
}

// The transpose of slice pads with zeros.
inline void slice(vjp_context& c) {
    c.give(0, [&] {
        const auto xs = c.xdims(0);
        std::vector<std::int64_t> high;
        for (std::size_t i = 0; i < xs.size(); ++i) high.push_back(xs[i].extent - c.n.limits[i]);
        return ir::pad(c.g, c.ct, ir::scalar(c.g, c.type(), 0.0), c.n.starts, std::move(high));
    });
}

// XLA clamps dynamic_slice's and dynamic_update_slice's starts the same way for
// one size, so the cotangent is written back where the slice was read.
inline void dynamic_slice(vjp_context& c) {
    c.give(0, [&] {
        std::vector<node_id> starts(c.n.operands.begin() + 1, c.n.operands.end());
        return ir::dynamic_update_slice(c.g, c.zeros(c.xdims(0)), c.ct, starts);
    });
}
inline void dynamic_update_slice(vjp_context& c) {
    std::vector<node_id> starts(c.n.operands.begin() + 2, c.n.operands.end());
    const auto us = c.xdims(1);
    c.give(0, [&] { return ir::dynamic_update_slice(c.g, c.ct, c.zeros(us), starts); });
    c.give(1, [&] {
        std::vector<std::int64_t> sizes;
        for (const auto& d : us) sizes.push_back(d.extent);
        return ir::dynamic_slice(c.g, c.ct, starts, std::move(sizes));
    });
}

inline void concatenate(vjp_context& c) {
    const auto axis = static_cast<std::size_t>(c.n.axes[0]);
    std::int64_t offset = 0;
    for (std::size_t k = 0; k < c.n.operands.size(); ++k) {
        const auto xs = c.xdims(k);
        c.give(k, [&] {
            std::vector<std::int64_t> starts(xs.size(), 0), limits;
            for (const auto& d : c.n.dims) limits.push_back(d.extent);
            starts[axis] = offset;
            limits[axis] = offset + xs[axis].extent;
            return ir::slice(c.g, c.ct, std::move(starts), std::move(limits));
        });
        offset += xs[axis].extent;
    }
}

// pad(x, v): x's share is the part of ct where x landed (negative padding cut x:
// those elements get zeros); v's is the sum of ct over the padding.
inline void pad(vjp_context& c) {
    const auto xs = c.xdims(0);
    c.give(0, [&] {
        std::vector<std::int64_t> restore_low, restore_high, starts, limits;
        bool cut = false;
        for (std::size_t i = 0; i < xs.size(); ++i) {
            restore_low.push_back(std::max<std::int64_t>(0, -c.n.starts[i]));
            restore_high.push_back(std::max<std::int64_t>(0, -c.n.limits[i]));
            cut = cut || c.n.starts[i] < 0 || c.n.limits[i] < 0;
            starts.push_back(std::max<std::int64_t>(0, c.n.starts[i]));
            limits.push_back(starts.back() + xs[i].extent);
        }
        const auto whole = cut ? ir::pad(c.g, c.ct, ir::scalar(c.g, c.type(), 0.0), restore_low, restore_high) : c.ct;
        return ir::slice(c.g, whole, std::move(starts), std::move(limits));
    });
    c.give(1, [&] {
        auto where = ir::pad(c.g, c.zeros(xs), ir::scalar(c.g, c.type(), 1.0), c.n.starts, c.n.limits);
        return ir::sum_all(c.g, c.mul(c.ct, where));
    });
}

// gather clamps its indices; scatter skips those out of range: the transpose
// clamps them first, so each row's cotangent lands on the row that was read.
inline void gather(vjp_context& c) {
    c.give(0, [&] {
        const auto ids = c.x(1);
        const auto top = static_cast<double>(c.xdims(0)[static_cast<std::size_t>(c.n.axes[0])].extent - 1);
        auto clamped = ir::binary(c.g, op::min, ir::binary(c.g, op::max, ids, 0.0), top);
        return ir::scatter_add(c.g, c.zeros(c.xdims(0)), clamped, c.ct, c.n.axes[0]);
    });
}

// scatter_add(table, ids, updates): the table's cotangent passes through; an
// update's is the cotangent of the row it was added to, zero if it was skipped.
inline void scatter(vjp_context& c) {
    c.give(0, [&] { return c.ct; });
    c.give(2, [&] {
        const auto ids = c.x(1);
        const auto extent = static_cast<double>(c.n.dims[static_cast<std::size_t>(c.n.axes[0])].extent);
        auto rows = ir::gather(c.g, c.ct, ids, c.n.axes[0]);
        const auto us = c.dims(rows);
        auto in_range = ir::binary(c.g, op::bitwise_and,
                                      ir::compare(c.g, comparison::ge, ids, ir::full(c.g, c.g[ids].type, c.dims(ids), 0.0)),
                                      ir::compare(c.g, comparison::lt, ids, ir::full(c.g, c.g[ids].type, c.dims(ids), extent)));
        std::vector<std::int64_t> at;  // ids' dimensions are the last of the updates'
        for (std::size_t i = us.size() - c.dims(ids).size(); i < us.size(); ++i) at.push_back(static_cast<std::int64_t>(i));
        return ir::select(c.g, ir::broadcast(c.g, in_range, us, std::move(at)), rows, c.zeros(us));
    });
}

// --- collectives: SPMD, the loss the same on every replica ------------------------

// all_reduce sum: every replica's x adds to the (replicated) result, so each x's
// cotangent is the result's. max and min: as reduce, the ties counted over the group.
inline void all_reduce(vjp_context& c) {
    c.give(0, [&] {
        if (c.n.reduction == reducer::sum) return c.ct;
        auto hit = ir::compare(c.g, comparison::eq, c.x(0), c.y());
        auto ones = ir::select(c.g, hit, ir::full(c.g, c.type(), c.n.dims, 1.0), c.zeros(c.n.dims));
        auto count = ir::all_reduce(c.g, ones, reducer::sum, c.n.replica_groups);
        return c.mul(ones, c.div(c.ct, count));
    });
}

// all_gather: each replica's cotangent is its own part of the result's.
inline void all_gather(vjp_context& c) {
    c.give(0, [&] {
        auto& g = c.g;
        const auto xs = c.xdims(0);
        const auto axis = static_cast<std::size_t>(c.n.axes[0]);
        // The replica's place in its group, from a table indexed by replica id.
        std::int64_t replicas = 0;
        for (const auto& grp : c.n.replica_groups) replicas += static_cast<std::int64_t>(grp.size());
        std::vector<std::int32_t> place(static_cast<std::size_t>(replicas), 0);
        for (const auto& grp : c.n.replica_groups)
            for (std::size_t k = 0; k < grp.size(); ++k) place[static_cast<std::size_t>(grp[k])] = static_cast<std::int32_t>(k);
        node table;
        table.kind = op::constant;
        table.type = dtype::s32;
        table.dims = {{"replica", replicas}};
        table.literal.resize(place.size() * 4);
        std::memcpy(table.literal.data(), place.data(), table.literal.size());
        const auto t = g.add(std::move(table));
        auto mine = ir::gather(g, t, ir::convert(g, ir::replica_id(g), dtype::s32), 0);
        auto start = ir::binary(g, op::mul, mine, static_cast<double>(xs[axis].extent));
        std::vector<node_id> starts(xs.size(), -1);
        for (std::size_t i = 0; i < xs.size(); ++i) starts[i] = i == axis ? start : ir::scalar(g, dtype::s32, 0.0);
        std::vector<std::int64_t> sizes;
        for (const auto& d : xs) sizes.push_back(d.extent);
        return ir::dynamic_slice(g, c.ct, starts, std::move(sizes));
    });
}

}  // namespace vjp

// The rule of each op; `present` is false for an op that passes no gradient (a
// flag, not a null test of the pointer: GCC's sanitizers make that comparison
// non-constant).
struct vjp_entry {
    vjp_rule rule = nullptr;
    bool present = false;
};
constexpr vjp_entry vjp_rule_for(op k) {
    switch (k) {
        case op::convert: return {vjp::convert, true};
        case op::neg: return {vjp::neg, true};
        case op::abs: return {vjp::abs, true};
        case op::exp: return {vjp::exp, true};
        case op::expm1: return {vjp::expm1, true};
        case op::log: return {vjp::log, true};
        case op::log1p: return {vjp::log1p, true};
        case op::sqrt: return {vjp::sqrt, true};
        case op::rsqrt: return {vjp::rsqrt, true};
        case op::tanh: return {vjp::tanh, true};
        case op::logistic: return {vjp::logistic, true};
        case op::sin: return {vjp::sin, true};
        case op::cos: return {vjp::cos, true};
        case op::erf: return {vjp::erf, true};
        case op::add: return {vjp::add, true};
        case op::sub: return {vjp::sub, true};
        case op::mul: return {vjp::mul, true};
        case op::div: return {vjp::div, true};
        case op::max: return {vjp::max, true};
        case op::min: return {vjp::min, true};
        case op::pow: return {vjp::pow, true};
        case op::select: return {vjp::select, true};
        case op::broadcast: return {vjp::broadcast, true};
        case op::transpose: return {vjp::transpose, true};
        case op::reshape: return {vjp::reshape, true};
        case op::dot: return {vjp::dot, true};
        case op::reduce: return {vjp::reduce, true};
        case op::slice: return {vjp::slice, true};
        case op::dynamic_slice: return {vjp::dynamic_slice, true};
        case op::dynamic_update_slice: return {vjp::dynamic_update_slice, true};
        case op::concatenate: return {vjp::concatenate, true};
        case op::pad: return {vjp::pad, true};
        case op::gather: return {vjp::gather, true};
        case op::scatter: return {vjp::scatter, true};
        case op::all_reduce: return {vjp::all_reduce, true};
        case op::all_gather: return {vjp::all_gather, true};
        default: return {};
    }
}

// If this fails, an op marked differentiable in op_table has no rule here, or an
// op with a rule is not marked: add the rule (or the mark) with the op.
static_assert([] {
    for (const auto& r : op_table)
        if (r.differentiable != vjp_rule_for(r.kind).present) return false;
    return true;
}(), "graph/vjp.hpp: every differentiable op needs a gradient rule, and only those have one");

}  // namespace scribe
