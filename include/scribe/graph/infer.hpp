// scribe/graph/infer.hpp — the run-time shape rule of every op, in one place.
//
// The typed front end (ops/) decides at compile time which dimensions a result has
// and in which order; this rule computes the extents, checks every run-time fact
// (extents that must agree, bounds, divisibility) and throws scribe::error naming
// the op, the dimensions and both sizes. An IR built without the typed layer gets
// the same checks.
#pragma once

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "node.hpp"

namespace scribe {

namespace detail {

inline std::string op_name(const node& n) { return std::string(info(n.kind).name); }

inline void require(bool ok, const node& n, const std::string& what) {
    if (!ok) throw error(op_name(n) + ": " + what);
}

inline void check_axis(const node& n, std::int64_t axis, std::size_t rank) {
    require(axis >= 0 && static_cast<std::size_t>(axis) < rank, n,
            "dimension index " + std::to_string(axis) + " is out of range for rank " +
                std::to_string(rank));
}

// Operands of an element-wise op must have one shape: same names, same order, same extents.
inline void check_same_shape(const node& n, const shape& a, const shape& b, const char* lhs,
                             const char* rhs) {
    require(a.size() == b.size(), n,
            std::string(lhs) + " has shape " + to_string(a) + " but " + rhs + " has " + to_string(b));
    for (std::size_t i = 0; i < a.size(); ++i) {
        require(a[i].name == b[i].name, n,
                "dimension " + ticked(a[i].name) + " of " + lhs + " meets " + ticked(b[i].name) +
                    " of " + rhs + " (shapes " + to_string(a) + " and " + to_string(b) + ")");
        require(a[i].extent == b[i].extent, n,
                "dimension " + ticked(a[i].name) + " has extent " + std::to_string(a[i].extent) +
                    " in " + lhs + " but " + std::to_string(b[i].extent) + " in " + rhs);
    }
}

inline void check_scalar_index(const node& n, const node& s, const char* what) {
    require(s.dims.empty() && is_integer(s.type), n,
            std::string(what) + " must be an integer scalar, got " + std::string(name(s.type)) +
                to_string(s.dims));
}

inline std::int64_t group_size(const node& n) {
    require(!n.replica_groups.empty() && !n.replica_groups.front().empty(), n,
            "needs at least one non-empty replica group");
    const auto size = n.replica_groups.front().size();
    std::set<std::int64_t> seen;
    for (const auto& g : n.replica_groups) {
        require(g.size() == size, n, "replica groups must all have the same size");
        for (auto r : g) require(r >= 0 && seen.insert(r).second, n,
                                 "replica " + std::to_string(r) + " is negative or in two groups");
    }
    return static_cast<std::int64_t>(size);
}

}  // namespace detail

// Computes n.dims (and n.type where the op decides it) from n's operands in `nodes`.
inline void infer(const std::vector<node>& nodes, node& n) {
    using namespace detail;
    auto operand = [&](std::size_t i) -> const node& {
        require(i < n.operands.size(), n, "missing operand " + std::to_string(i));
        const auto id = n.operands[i];
        require(id >= 0 && static_cast<std::size_t>(id) < nodes.size(), n,
                "operand " + std::to_string(i) + " is not a node of this graph");
        return nodes[static_cast<std::size_t>(id)];
    };
    auto arity = [&](std::size_t k) {
        require(n.operands.size() == k, n,
                "takes " + std::to_string(k) + " operands, got " + std::to_string(n.operands.size()));
    };

    switch (n.kind) {
        case op::parameter:
        case op::iota:
            arity(0);
            require(n.kind != op::iota || n.type != dtype::pred, n, "cannot count in pred");
            for (const auto& d : n.dims)
                require(d.extent > 0, n, "dimension " + ticked(d.name) + " has extent " +
                                             std::to_string(d.extent) + "; extents must be positive");
            if (n.kind == op::iota) {
                require(n.axes.size() == 1, n, "needs one dimension to count along");
                check_axis(n, n.axes[0], n.dims.size());
            }
            break;
        case op::constant:
            arity(0);
            require(n.literal.size() ==
                        static_cast<std::size_t>(element_count(n.dims) * info(n.type).bytes),
                    n, "literal holds " + std::to_string(n.literal.size()) + " bytes but " +
                           std::string(name(n.type)) + to_string(n.dims) + " needs " +
                           std::to_string(element_count(n.dims) * info(n.type).bytes));
            break;
        case op::convert:
            arity(1);
            n.dims = operand(0).dims;
            break;
        case op::bitcast_convert: {
            arity(1);
            const auto& x = operand(0);
            require(info(x.type).bytes == info(n.type).bytes, n,
                    std::string(name(x.type)) + " (" + std::to_string(info(x.type).bytes * 8) + " bits) to " +
                        std::string(name(n.type)) + " (" + std::to_string(info(n.type).bytes * 8) +
                        " bits): the element widths differ; bitcast_convert keeps the width");
            n.dims = x.dims;
            break;
        }
        case op::compare:
        case op::add: case op::sub: case op::mul: case op::div:
        case op::max: case op::min: case op::pow:
        case op::bitwise_and: case op::bitwise_or: case op::bitwise_xor:
        case op::shift_left: case op::shift_right_logical: case op::shift_right_arithmetic: {
            arity(2);
            const auto& a = operand(0);
            const auto& b = operand(1);
            require(a.type == b.type, n, "dtype mismatch: " + std::string(name(a.type)) + " and " +
                                             std::string(name(b.type)));
            require(admits(info(n.kind).operands, a.type), n,
                    "takes " + std::string(describe(info(n.kind).operands)) + ", got " + std::string(name(a.type)));
            check_same_shape(n, a.dims, b.dims, "lhs", "rhs");
            n.dims = a.dims;
            n.type = n.kind == op::compare ? dtype::pred : a.type;
            break;
        }
        case op::select: {
            arity(3);
            const auto& p = operand(0);
            const auto& a = operand(1);
            const auto& b = operand(2);
            require(p.type == dtype::pred, n, "the condition must be pred, got " + std::string(name(p.type)));
            require(a.type == b.type, n, "dtype mismatch: " + std::string(name(a.type)) + " and " +
                                             std::string(name(b.type)));
            check_same_shape(n, p.dims, a.dims, "condition", "on_true");
            check_same_shape(n, a.dims, b.dims, "on_true", "on_false");
            n.dims = a.dims;
            n.type = a.type;
            break;
        }
        case op::broadcast: {
            arity(1);
            const auto& x = operand(0);
            require(n.axes.size() == x.dims.size(), n, "needs one result position per operand dimension");
            for (std::size_t i = 0; i < x.dims.size(); ++i) {
                check_axis(n, n.axes[i], n.dims.size());
                require(i == 0 || n.axes[i] > n.axes[i - 1], n, "operand dimensions must keep their order");
                require(n.dims[static_cast<std::size_t>(n.axes[i])] == x.dims[i], n,
                        "operand dimension " + ticked(x.dims[i].name) + "=" +
                            std::to_string(x.dims[i].extent) + " does not match result " +
                            to_string(n.dims));
            }
            for (const auto& d : n.dims)
                require(d.extent > 0, n, "new dimension " + ticked(d.name) + " has extent " +
                                             std::to_string(d.extent));
            n.type = x.type;
            break;
        }
        case op::transpose: {
            arity(1);
            const auto& x = operand(0);
            std::vector<std::int64_t> sorted = n.axes;
            std::sort(sorted.begin(), sorted.end());
            bool perm = sorted.size() == x.dims.size();
            for (std::size_t i = 0; perm && i < sorted.size(); ++i) perm = sorted[i] == static_cast<std::int64_t>(i);
            require(perm, n, "the order is not a permutation of " + to_string(x.dims));
            n.dims.clear();
            for (auto a : n.axes) n.dims.push_back(x.dims[static_cast<std::size_t>(a)]);
            n.type = x.type;
            break;
        }
        case op::reshape: {
            arity(1);
            const auto& x = operand(0);
            require(element_count(n.dims) == element_count(x.dims), n,
                    to_string(x.dims) + " has " + std::to_string(element_count(x.dims)) +
                        " elements but " + to_string(n.dims) + " has " +
                        std::to_string(element_count(n.dims)));
            n.type = x.type;
            break;
        }
        case op::dot: {
            arity(2);
            const auto& a = operand(0);
            const auto& b = operand(1);
            require(a.type == b.type, n, "dtype mismatch: " + std::string(name(a.type)) + " and " +
                                             std::string(name(b.type)));
            const auto& d = n.dot;
            require(d.lhs_contracting.size() == d.rhs_contracting.size() &&
                        d.lhs_batch.size() == d.rhs_batch.size(),
                    n, "lhs and rhs must name as many contracting and batch dimensions");
            auto pair_check = [&](const std::vector<std::int64_t>& l, const std::vector<std::int64_t>& r,
                                  const char* what) {
                for (std::size_t i = 0; i < l.size(); ++i) {
                    check_axis(n, l[i], a.dims.size());
                    check_axis(n, r[i], b.dims.size());
                    const auto& x = a.dims[static_cast<std::size_t>(l[i])];
                    const auto& y = b.dims[static_cast<std::size_t>(r[i])];
                    require(x.extent == y.extent, n,
                            std::string("cannot ") + what + " " + ticked(x.name) + " (" +
                                std::to_string(x.extent) + ") with " + ticked(y.name) + " (" +
                                std::to_string(y.extent) + ")");
                }
            };
            pair_check(d.lhs_contracting, d.rhs_contracting, "contract");
            pair_check(d.lhs_batch, d.rhs_batch, "batch");
            auto used = [](const std::vector<std::int64_t>& c, const std::vector<std::int64_t>& bt, std::int64_t i) {
                return std::find(c.begin(), c.end(), i) != c.end() || std::find(bt.begin(), bt.end(), i) != bt.end();
            };
            n.dims.clear();
            for (auto i : d.lhs_batch) n.dims.push_back(a.dims[static_cast<std::size_t>(i)]);
            for (std::size_t i = 0; i < a.dims.size(); ++i)
                if (!used(d.lhs_contracting, d.lhs_batch, static_cast<std::int64_t>(i))) n.dims.push_back(a.dims[i]);
            for (std::size_t i = 0; i < b.dims.size(); ++i)
                if (!used(d.rhs_contracting, d.rhs_batch, static_cast<std::int64_t>(i))) n.dims.push_back(b.dims[i]);
            n.type = a.type;
            break;
        }
        case op::reduce:
        case op::argmax: {
            arity(1);
            const auto& x = operand(0);
            require(!n.axes.empty(), n, "needs at least one dimension to reduce");
            if (n.kind == op::argmax) require(n.axes.size() == 1, n, "reduces exactly one dimension");
            n.dims.clear();
            for (auto a : n.axes) check_axis(n, a, x.dims.size());
            for (std::size_t i = 0; i < x.dims.size(); ++i)
                if (std::find(n.axes.begin(), n.axes.end(), static_cast<std::int64_t>(i)) == n.axes.end())
                    n.dims.push_back(x.dims[i]);
            n.type = n.kind == op::argmax ? dtype::s32 : x.type;
            break;
        }
        case op::slice: {
            arity(1);
            const auto& x = operand(0);
            require(n.starts.size() == x.dims.size() && n.limits.size() == x.dims.size(), n,
                    "needs a start and a limit for every dimension");
            n.dims = x.dims;
            for (std::size_t i = 0; i < x.dims.size(); ++i) {
                require(0 <= n.starts[i] && n.starts[i] < n.limits[i] && n.limits[i] <= x.dims[i].extent, n,
                        "range [" + std::to_string(n.starts[i]) + ", " + std::to_string(n.limits[i]) +
                            ") is empty or outside " + ticked(x.dims[i].name) + " of extent " +
                            std::to_string(x.dims[i].extent));
                n.dims[i].extent = n.limits[i] - n.starts[i];
            }
            n.type = x.type;
            break;
        }
        case op::dynamic_slice: {
            const auto& x = operand(0);
            arity(1 + x.dims.size());
            require(n.limits.size() == x.dims.size(), n, "needs a size for every dimension");
            n.dims = x.dims;
            for (std::size_t i = 0; i < x.dims.size(); ++i) {
                check_scalar_index(n, operand(i + 1), "a start index");
                require(0 < n.limits[i] && n.limits[i] <= x.dims[i].extent, n,
                        "size " + std::to_string(n.limits[i]) + " does not fit " + ticked(x.dims[i].name) +
                            " of extent " + std::to_string(x.dims[i].extent));
                n.dims[i].extent = n.limits[i];
            }
            n.type = x.type;
            break;
        }
        case op::dynamic_update_slice: {
            const auto& x = operand(0);
            const auto& u = operand(1);
            arity(2 + x.dims.size());
            require(x.type == u.type, n, "dtype mismatch: " + std::string(name(x.type)) + " and " +
                                             std::string(name(u.type)));
            require(u.dims.size() == x.dims.size(), n,
                    "update " + to_string(u.dims) + " and operand " + to_string(x.dims) + " differ in rank");
            for (std::size_t i = 0; i < x.dims.size(); ++i) {
                require(u.dims[i].name == x.dims[i].name, n,
                        "update dimension " + ticked(u.dims[i].name) + " meets " + ticked(x.dims[i].name));
                require(u.dims[i].extent <= x.dims[i].extent, n,
                        "update has " + ticked(u.dims[i].name) + "=" + std::to_string(u.dims[i].extent) +
                            ", larger than the operand's " + std::to_string(x.dims[i].extent));
                check_scalar_index(n, operand(i + 2), "a start index");
            }
            n.dims = x.dims;
            n.type = x.type;
            break;
        }
        case op::concatenate: {
            require(!n.operands.empty(), n, "needs at least one operand");
            require(n.axes.size() == 1, n, "needs the dimension to concatenate along");
            const auto& first = operand(0);
            check_axis(n, n.axes[0], first.dims.size());
            const auto axis = static_cast<std::size_t>(n.axes[0]);
            n.dims = first.dims;
            n.dims[axis].extent = 0;
            for (std::size_t k = 0; k < n.operands.size(); ++k) {
                const auto& x = operand(k);
                require(x.type == first.type, n, "dtype mismatch: " + std::string(name(first.type)) +
                                                     " and " + std::string(name(x.type)));
                require(x.dims.size() == first.dims.size(), n, "operands differ in rank");
                for (std::size_t i = 0; i < x.dims.size(); ++i) {
                    require(x.dims[i].name == first.dims[i].name, n,
                            "dimension " + ticked(x.dims[i].name) + " meets " + ticked(first.dims[i].name));
                    require(i == axis || x.dims[i].extent == first.dims[i].extent, n,
                            "dimension " + ticked(x.dims[i].name) + " has extent " +
                                std::to_string(first.dims[i].extent) + " in operand 0 but " +
                                std::to_string(x.dims[i].extent) + " in operand " + std::to_string(k));
                }
                n.dims[axis].extent += x.dims[axis].extent;
            }
            n.type = first.type;
            break;
        }
        case op::pad: {
            arity(2);
            const auto& x = operand(0);
            const auto& v = operand(1);
            require(v.dims.empty() && v.type == x.type, n, "the padding value must be a scalar of the operand's dtype");
            require(n.starts.size() == x.dims.size() && n.limits.size() == x.dims.size(), n,
                    "needs low and high padding for every dimension");
            n.dims = x.dims;
            for (std::size_t i = 0; i < x.dims.size(); ++i) {
                n.dims[i].extent += n.starts[i] + n.limits[i];
                require(n.dims[i].extent > 0, n,
                        "padding " + std::to_string(n.starts[i]) + " and " + std::to_string(n.limits[i]) + " leave " +
                            ticked(x.dims[i].name) + " of extent " + std::to_string(x.dims[i].extent) + " empty");
            }
            n.type = x.type;
            break;
        }
        case op::gather: {
            arity(2);
            const auto& table = operand(0);
            const auto& ids = operand(1);
            require(is_integer(ids.type), n, "indices must be integers, got " + std::string(name(ids.type)));
            require(n.axes.size() == 1, n, "needs the table dimension to index");
            check_axis(n, n.axes[0], table.dims.size());
            n.dims.clear();
            for (std::size_t i = 0; i < table.dims.size(); ++i)
                if (static_cast<std::int64_t>(i) != n.axes[0]) n.dims.push_back(table.dims[i]);
            for (const auto& d : ids.dims) {
                for (const auto& t : n.dims)
                    require(t.name != d.name, n, "dimension " + ticked(d.name) + " is in both table and indices");
                n.dims.push_back(d);
            }
            n.type = table.type;
            break;
        }
        case op::scatter: {
            arity(3);
            const auto& table = operand(0);
            const auto& ids = operand(1);
            const auto& updates = operand(2);
            require(admits(info(n.kind).operands, table.type), n,
                    "the table: takes " + std::string(describe(info(n.kind).operands)) + ", got " + std::string(name(table.type)));
            require(is_integer(ids.type), n, "indices must be integers, got " + std::string(name(ids.type)));
            require(updates.type == table.type, n, "dtype mismatch: table " + std::string(name(table.type)) +
                                                       " and updates " + std::string(name(updates.type)));
            require(n.axes.size() == 1, n, "needs the table dimension to index");
            check_axis(n, n.axes[0], table.dims.size());
            // The updates are what gather would read: table's other dimensions, then ids'.
            shape want;
            for (std::size_t i = 0; i < table.dims.size(); ++i)
                if (static_cast<std::int64_t>(i) != n.axes[0]) want.push_back(table.dims[i]);
            for (const auto& d : ids.dims) {
                for (const auto& t : want)
                    require(t.name != d.name, n, "dimension " + ticked(d.name) + " is in both table and indices");
                want.push_back(d);
            }
            require(updates.dims == want, n,
                    "updates " + to_string(updates.dims) + " must be " + to_string(want) +
                        " (the table's dimensions without " + ticked(table.dims[static_cast<std::size_t>(n.axes[0])].name) +
                        ", then the indices')");
            n.dims = table.dims;
            n.type = table.type;
            break;
        }
        case op::all_reduce:
            arity(1);
            (void)group_size(n);
            n.dims = operand(0).dims;
            n.type = operand(0).type;
            break;
        case op::all_gather: {
            arity(1);
            const auto groups = group_size(n);
            const auto& x = operand(0);
            require(n.axes.size() == 1, n, "needs the dimension to gather along");
            check_axis(n, n.axes[0], x.dims.size());
            n.dims = x.dims;
            n.dims[static_cast<std::size_t>(n.axes[0])].extent *= groups;
            n.type = x.type;
            break;
        }
        case op::stop_gradient:
            arity(1);
            n.dims = operand(0).dims;
            n.type = operand(0).type;
            break;
        case op::replica_id:
            arity(0);
            n.dims.clear();
            n.type = dtype::u32;
            break;
        default:
            if (is_unary(n.kind)) {
                arity(1);
                const auto& x = operand(0);
                require(admits(info(n.kind).operands, x.type), n,
                        "takes " + std::string(describe(info(n.kind).operands)) + ", got " +
                            std::string(name(x.type)));
                n.dims = x.dims;
                n.type = x.type;
                break;
            }
            throw error("infer: unknown op " + std::to_string(static_cast<int>(n.kind)));
    }
}

}  // namespace scribe
