// scribe/hlo/lower.hpp — graph -> HLO module: the HLO emission of every op.
//
// Most ops map one node to one instruction (the opcode is in op_table). The rest
// expand here: reduce and all-reduce get an init value and a reducer computation,
// scatter the sum's, argmax a variadic reduce over (value, index) pairs. Dimension names become
// positions; every array shape gets the default layout {rank-1, ..., 0}.
#pragma once

#include <limits>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "module.hpp"

namespace scribe::hlo {

namespace detail {

inline shape array_shape(dtype t, const scribe::shape& s) {
    shape out;
    out.type = t;
    for (const auto& d : s) out.dims.push_back(d.extent);
    return out;
}

// The identity of a reduction, as the init value of reduce.
inline double reduction_identity(reducer r, dtype t) {
    constexpr double inf = std::numeric_limits<double>::infinity();
    if (r == reducer::sum) return 0.0;
    if (is_float(t)) return r == reducer::max ? -inf : inf;
    const bool sign = info(t).is_signed;
    const int bits = info(t).bytes * 8;
    if (t == dtype::pred) return r == reducer::max ? 0.0 : 1.0;
    if (r == reducer::max) return sign ? -std::ldexp(1.0, bits - 1) : 0.0;
    return sign ? std::ldexp(1.0, bits - 1) - 1 : std::ldexp(1.0, bits) - 1;
}

class lowering {
public:
    explicit lowering(const graph& g) : g_(g) {}

    module run() {
        module m;
        m.name = sanitize(g_.name());
        if (g_.outputs().empty())
            throw error("hlo: graph " + scribe::detail::ticked(g_.name()) + " has no outputs; call g.outputs(...)");
        computation entry;
        entry.name = unique("main");
        std::vector<std::int64_t> ids(g_.nodes().size());
        for (std::size_t i = 0; i < g_.nodes().size(); ++i) ids[i] = emit_node(entry, g_.nodes()[i], ids);

        const auto& outs = g_.outputs();
        if (outs.size() == 1) {
            entry.root_id = ids[static_cast<std::size_t>(outs[0])];
        } else {
            instruction t;
            t.opcode = "tuple";
            std::vector<shape> parts;
            for (auto o : outs) {
                t.operands.push_back(ids[static_cast<std::size_t>(o)]);
                parts.push_back(array_shape(g_[o].type, g_[o].dims));
            }
            t.shape = shape::tuple(std::move(parts));
            entry.root_id = add(entry, std::move(t));
        }
        entry.result = entry.find(entry.root_id).shape;
        for (auto id : g_.parameters()) {  // in parameter-number order
            const auto& n = g_[id];
            entry.parameters.push_back(array_shape(n.type, n.dims));
            entry.parameter_names.push_back(n.label);
        }
        for (const auto& a : g_.aliases()) {
            alias_entry e;
            if (outs.size() > 1) e.output_index = {static_cast<std::int64_t>(a.output)};
            e.parameter_number = a.parameter_number;
            m.aliases.push_back(e);
        }
        entry.id = next_id_++;
        m.computations = std::move(reducers_);
        m.computations.push_back(std::move(entry));
        return m;
    }

private:
    // HLO names: letters, digits, '_', '.', '-'; starting with a letter or '_'.
    static std::string sanitize(const std::string& s) {
        std::string out;
        for (char c : s) {
            const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                            c == '_' || c == '.' || c == '-';
            out.push_back(ok ? c : '_');
        }
        if (out.empty() || (out[0] >= '0' && out[0] <= '9') || out[0] == '.' || out[0] == '-') out = "_" + out;
        return out;
    }
    std::string unique(const std::string& base) {
        std::string name = sanitize(base);
        if (names_.insert(name).second) return name;
        for (int k = 1;; ++k) {
            std::string n = name + "." + std::to_string(k);
            if (names_.insert(n).second) return n;
        }
    }

    std::int64_t add(computation& c, instruction i) {
        i.id = next_id_++;
        if (i.name.empty()) i.name = unique(i.opcode + "." + std::to_string(i.id));
        c.instructions.push_back(std::move(i));
        return c.instructions.back().id;
    }

    std::int64_t constant(computation& c, dtype t, double value) {
        instruction k;
        k.opcode = "constant";
        k.shape.type = t;
        k.literal.resize(static_cast<std::size_t>(info(t).bytes));
        store_as(t, value, k.literal.data());
        return add(c, std::move(k));
    }

    std::int64_t parameter(computation& c, dtype t, std::int64_t number) {
        instruction p;
        p.opcode = "parameter";
        p.shape.type = t;
        p.parameter_number = number;
        c.parameters.push_back(p.shape);
        c.parameter_names.push_back("p" + std::to_string(number));
        return add(c, std::move(p));
    }

    std::int64_t binary(computation& c, const char* opcode, dtype t, std::int64_t a, std::int64_t b,
                        const char* direction = "") {
        instruction i;
        i.opcode = opcode;
        i.shape.type = direction[0] ? dtype::pred : t;
        i.operands = {a, b};
        i.direction = direction;
        return add(c, std::move(i));
    }

    // The scalar reducer computation for (r, t), made once per module.
    std::int64_t reducer_computation(reducer r, dtype t) {
        const auto key = std::make_tuple(0, static_cast<int>(r), static_cast<int>(t));
        if (auto it = computation_ids_.find(key); it != computation_ids_.end()) return it->second;
        static constexpr const char* opcodes[] = {"add", "maximum", "minimum"};
        const char* opcode = t == dtype::pred ? (r == reducer::min ? "and" : "or") : opcodes[static_cast<int>(r)];
        computation c;
        c.name = unique(std::string(opcode) + "_" + std::string(name(t)));
        const auto a = parameter(c, t, 0);
        const auto b = parameter(c, t, 1);
        c.root_id = binary(c, opcode, t, a, b);
        c.result = c.find(c.root_id).shape;
        c.id = next_id_++;
        reducers_.push_back(std::move(c));
        return computation_ids_[key] = reducers_.back().id;
    }

    // (value, index) pairs -> the pair with the larger value, the smaller index on ties.
    std::int64_t argmax_computation(dtype t) {
        const auto key = std::make_tuple(1, 0, static_cast<int>(t));
        if (auto it = computation_ids_.find(key); it != computation_ids_.end()) return it->second;
        computation c;
        c.name = unique("argmax_" + std::string(name(t)));
        const auto av = parameter(c, t, 0);
        const auto ai = parameter(c, dtype::s32, 1);
        const auto bv = parameter(c, t, 2);
        const auto bi = parameter(c, dtype::s32, 3);
        const auto greater = binary(c, "compare", t, av, bv, "GT");
        const auto equal = binary(c, "compare", t, av, bv, "EQ");
        const auto earlier = binary(c, "compare", dtype::s32, ai, bi, "LT");
        const auto tie = binary(c, "and", dtype::pred, equal, earlier);
        const auto take_a = binary(c, "or", dtype::pred, greater, tie);
        instruction sv;
        sv.opcode = "select";
        sv.shape.type = t;
        sv.operands = {take_a, av, bv};
        const auto v = add(c, std::move(sv));
        instruction si;
        si.opcode = "select";
        si.shape.type = dtype::s32;
        si.operands = {take_a, ai, bi};
        const auto idx = add(c, std::move(si));
        instruction tup;
        tup.opcode = "tuple";
        tup.shape = shape::tuple({c.find(v).shape, c.find(idx).shape});
        tup.operands = {v, idx};
        c.root_id = add(c, std::move(tup));
        c.result = c.find(c.root_id).shape;
        c.id = next_id_++;
        reducers_.push_back(std::move(c));
        return computation_ids_[key] = reducers_.back().id;
    }

    std::int64_t emit_node(computation& c, const node& n, const std::vector<std::int64_t>& ids) {
        auto operand = [&](std::size_t k) { return ids[static_cast<std::size_t>(n.operands[k])]; };
        if (n.kind == op::stop_gradient) return operand(0);  // the identity: no instruction
        instruction i;
        i.opcode = std::string(info(n.kind).opcode);
        i.shape = array_shape(n.type, n.dims);
        for (std::size_t k = 0; k < n.operands.size(); ++k) i.operands.push_back(operand(k));
        switch (n.kind) {
            case op::parameter:
                i.parameter_number = n.parameter_number;
                i.name = unique(n.label);
                break;
            case op::constant:
                i.literal = n.literal;
                break;
            case op::iota:
            case op::transpose:
            case op::broadcast:
            case op::concatenate:
            case op::all_gather:
                i.has_dimensions = true;
                i.dimensions = n.axes;
                if (n.kind == op::all_gather) i.replica_groups = n.replica_groups;
                break;
            case op::compare:
                i.direction = std::string(comparison_names[static_cast<int>(n.direction)]);
                break;
            case op::dot:
                i.is_dot = true;
                i.dot = n.dot;
                break;
            case op::reduce: {
                const auto& x = g_[n.operands[0]];
                i.operands.push_back(constant(c, x.type, reduction_identity(n.reduction, x.type)));
                i.has_dimensions = true;
                i.dimensions = n.axes;
                i.called = {reducer_computation(n.reduction, x.type)};
                break;
            }
            case op::argmax: {
                const auto& x = g_[n.operands[0]];
                instruction io;
                io.opcode = "iota";
                io.shape = array_shape(dtype::s32, x.dims);
                io.has_dimensions = true;
                io.dimensions = n.axes;
                const auto index = add(c, std::move(io));
                const auto init_v = constant(c, x.type, reduction_identity(reducer::max, x.type));
                const auto init_i = constant(c, dtype::s32, 0);
                instruction r;
                r.opcode = "reduce";
                r.shape = shape::tuple({array_shape(x.type, n.dims), array_shape(dtype::s32, n.dims)});
                r.operands = {operand(0), index, init_v, init_i};
                r.has_dimensions = true;
                r.dimensions = n.axes;
                r.called = {argmax_computation(x.type)};
                const auto pair = add(c, std::move(r));
                i.opcode = "get-tuple-element";
                i.operands = {pair};
                i.tuple_index = 1;
                break;
            }
            case op::slice:
                for (std::size_t k = 0; k < n.starts.size(); ++k) i.slices.push_back({n.starts[k], n.limits[k], 1});
                break;
            case op::dynamic_slice:
                i.dynamic_slice_sizes = n.limits;
                break;
            case op::pad:
                for (std::size_t k = 0; k < n.starts.size(); ++k) i.padding.push_back({n.starts[k], n.limits[k]});
                break;
            case op::gather: {
                const auto& table = g_[n.operands[0]];
                const auto& idx = g_[n.operands[1]];
                i.is_gather = true;
                for (std::int64_t k = 0; k + 1 < static_cast<std::int64_t>(table.dims.size()); ++k)
                    i.gather.offset_dims.push_back(k);
                i.gather.collapsed_slice_dims = n.axes;
                i.gather.start_index_map = n.axes;
                i.gather.index_vector_dim = static_cast<std::int64_t>(idx.dims.size());
                for (std::size_t k = 0; k < table.dims.size(); ++k)
                    i.gather.slice_sizes.push_back(static_cast<std::int64_t>(k) == n.axes[0] ? 1 : table.dims[k].extent);
                break;
            }
            case op::scatter: {  // gather's dimension numbers, read the other way; adds with reduce's sum
                const auto& table = g_[n.operands[0]];
                const auto& idx = g_[n.operands[1]];
                i.is_scatter = true;
                for (std::int64_t k = 0; k + 1 < static_cast<std::int64_t>(table.dims.size()); ++k)
                    i.scatter.update_window_dims.push_back(k);
                i.scatter.inserted_window_dims = n.axes;
                i.scatter.scatter_dims_to_operand_dims = n.axes;
                i.scatter.index_vector_dim = static_cast<std::int64_t>(idx.dims.size());
                i.called = {reducer_computation(reducer::sum, table.type)};
                break;
            }
            case op::all_reduce:
                i.replica_groups = n.replica_groups;
                i.called = {reducer_computation(n.reduction, n.type)};
                break;
            default:
                break;
        }
        return add(c, std::move(i));
    }

    const graph& g_;
    std::int64_t next_id_ = 1;
    std::set<std::string> names_;
    std::vector<computation> reducers_;
    std::map<std::tuple<int, int, int>, std::int64_t> computation_ids_;
};

}  // namespace detail

// Lowers a graph (with its outputs set) to an HLO module.
inline module lower(const graph& g) {
    g.check_bindings();
    return detail::lowering(g).run();
}

}  // namespace scribe::hlo
