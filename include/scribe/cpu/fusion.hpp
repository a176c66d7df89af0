// scribe/cpu/fusion.hpp — element-wise fusion.
//
// A chain such as gelu(x * w + b) is many IR nodes; run one by one, each writes a
// full-size buffer that the next reads back. The plan below groups float
// element-wise nodes (unary, binary, select, float converts) of one shape whose
// values are not needed outside the group, and the group runs in one pass: chunk
// by chunk, each member's values live in a small scratch block (in L2), and only
// the group's root writes memory. Every float element-wise node runs this way,
// alone if it cannot join others.
//
// Broadcasts and transposes read by group members only are not materialised
// either: the group reads their source through strides ("inlined views"), so
// the bias of `x . w + b` or the row maximum of a softmax is read in place.
//
// Row groups go across reductions over the last dimension: a layer norm or a
// softmax (x - max, exp, the sum, the division) is one group that runs a block of
// whole rows at a time, each reduction summing its rows from the block in L2 and
// the broadcasts of its results spreading them back, so that the values cross
// memory once instead of once per op: the group reads its inputs and writes its
// root, nothing else. A reduction reduces a row with the reduce kernel's own
// function (simd::reduce over the f32 row), so the results are the unfused ones,
// bit for bit.
//
// Chunks are split over the thread pool; each element is computed by one thread
// in one order, so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "array.hpp"
#include "element.hpp"
#include "kernels.hpp"
#include "simd/elementwise.hpp"
#include "thread_pool.hpp"

namespace scribe::cpu {

// One fused group: its members in evaluation order, the last being the root.
struct fusion_group {
    std::vector<node_id> members;
    // A row group's row: the extent of the last dimension its reductions sum over
    // (its members are of the full shape or of the shape without that dimension);
    // 0 for a group of one shape.
    std::int64_t row = 0;
};

struct fusion_plan {
    std::vector<node_id> group_of;  // for each node: the root of its group, or -1
    std::vector<bool> inlined;      // broadcasts/transposes read in place by their users
    std::vector<fusion_group> groups;

    // One line per group of several nodes, and the views read in place.
    std::string report(const graph& g) const {
        std::string out;
        for (const auto& grp : groups) {
            if (grp.members.size() < 2) continue;
            out += "fused " + std::to_string(grp.members.size()) + " nodes:";
            for (auto id : grp.members) out += " " + std::string(info(g[id].kind).name) + "#" + std::to_string(id);
            out += " (" + std::to_string(grp.members.size() - 1) + " intermediate buffers avoided";
            if (grp.row) out += "; rows of " + std::to_string(grp.row);
            out += ")\n";
        }
        for (std::size_t i = 0; i < inlined.size(); ++i)
            if (inlined[i]) out += "read in place: " + std::string(info(g[static_cast<node_id>(i)].kind).name) + "#" + std::to_string(i) + "\n";
        return out;
    }
};

namespace detail {

inline bool float_fusible_type(dtype t) { return t == dtype::f32 || t == dtype::f16 || t == dtype::bf16; }

// Element-wise nodes the fused kernel evaluates, on f32/f16/bf16 values.
inline bool fusible(const graph& g, const node& n) {
    if (!float_fusible_type(n.type)) return false;
    if (!info(n.kind).fusible) return false;
    return n.kind != op::convert || float_fusible_type(g[n.operands[0]].type);
}

inline bool is_view(const node& n) { return n.kind == op::broadcast || n.kind == op::transpose; }

inline bool same_extents(const shape& a, const shape& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](const dim_extent& x, const dim_extent& y) { return x.extent == y.extent; });
}
// `full` without its last dimension is `part` (extents).
inline bool is_row_of(const shape& part, const shape& full) {
    return !full.empty() && part.size() + 1 == full.size() &&
           std::equal(part.begin(), part.end(), full.begin(), [](const dim_extent& x, const dim_extent& y) { return x.extent == y.extent; });
}
// What a row group can hold besides element-wise ops: a float reduction over its
// operand's last dimension alone, a broadcast of a row value along a new last
// dimension, and identities (stop_gradient, a reshape to the same extents).
inline bool row_reduce(const graph& g, const node& n) {
    if (n.kind != op::reduce || !float_fusible_type(n.type) || n.axes.size() != 1) return false;
    const auto& x = g[n.operands[0]];
    return float_fusible_type(x.type) && n.axes[0] + 1 == static_cast<std::int64_t>(x.dims.size()) && is_row_of(n.dims, x.dims);
}
inline bool row_broadcast(const graph& g, const node& n) {
    if (n.kind != op::broadcast || !float_fusible_type(n.type)) return false;
    const auto& x = g[n.operands[0]];
    for (std::size_t k = 0; k < n.axes.size(); ++k)
        if (n.axes[k] != static_cast<std::int64_t>(k)) return false;
    return x.type == n.type && is_row_of(x.dims, n.dims);
}
inline bool row_identity(const graph& g, const node& n) {
    return (n.kind == op::stop_gradient || n.kind == op::reshape) && float_fusible_type(n.type) &&
           g[n.operands[0]].type == n.type && same_extents(g[n.operands[0]].dims, n.dims);
}

// Rows longer than this are left to the reduce kernel: a block of one row per
// member must stay near L1.
inline constexpr std::int64_t longest_fused_row = 4096;

// Row groups, found bottom-up as XLA's fusion does: from each candidate root (the
// latest first), an operand joins when every node that reads it is already in
// the group and its shape is the group's full or row shape. A group is kept when
// it holds a reduction and at least one other node. `ok`: the element-wise nodes
// the fused kernel evaluates; `usable`: nodes that may join at all; `readers`: each
// node's readers among the nodes that run (once per operand read). Returns the
// groups (members in node order) and marks their nodes in `claimed`. Each read is
// looked at once per attempt, and the nodes of an attempt that found no reduction
// are not tried as roots again (a group from one of them would hold none either).
inline std::vector<fusion_group> plan_rows(const graph& g, const std::vector<bool>& ok, const std::vector<bool>& usable,
                                           const std::vector<bool>& is_output,
                                           const std::vector<std::vector<std::size_t>>& readers, std::vector<bool>& claimed) {
    const auto& nodes = g.nodes();
    const auto count = nodes.size();
    std::vector<fusion_group> out;
    bool any_reduce = false;
    for (std::size_t i = 0; i < count && !any_reduce; ++i) any_reduce = usable[i] && row_reduce(g, nodes[i]);
    if (!any_reduce) return out;
    auto joinable = [&](std::size_t i) {
        return usable[i] && !claimed[i] && !is_output[i] &&
               (ok[i] || row_reduce(g, nodes[i]) || row_broadcast(g, nodes[i]) || row_identity(g, nodes[i]));
    };
    std::vector<char> member(count, 0), tried(count, 0);
    std::vector<std::int64_t> pending(count, -1);  // readers not in the group yet (-1: not counted)
    for (std::size_t c = count; c-- > 0;) {
        if (tried[c] || claimed[c] || !usable[c] || !(ok[c] || row_reduce(g, nodes[c]))) continue;  // a root computes
        // The group's shapes, once a reduction or a broadcast joins; before that every
        // member has the root's extents.
        const shape* full = nullptr;
        const shape* row = nullptr;
        bool reduces = row_reduce(g, nodes[c]);
        if (reduces) {
            full = &g[nodes[c].operands[0]].dims, row = &nodes[c].dims;
            if (full->back().extent <= 0 || full->back().extent > longest_fused_row) continue;
        }
        std::vector<std::size_t> members = {c}, counted;
        member[c] = 1;
        auto fits = [&](std::size_t o) {
            const auto& n = nodes[o];
            const bool reduce = row_reduce(g, n), spread = row_broadcast(g, n);
            if (reduce || spread) {
                const auto& f = reduce ? g[n.operands[0]].dims : n.dims;
                const auto& r = reduce ? n.dims : g[n.operands[0]].dims;
                if (!full) return same_extents(n.dims, nodes[c].dims) && f.back().extent > 0 && f.back().extent <= longest_fused_row;
                return same_extents(f, *full) && same_extents(r, *row);
            }
            if (!full) return same_extents(n.dims, nodes[c].dims);
            return same_extents(n.dims, *full) || same_extents(n.dims, *row);
        };
        for (std::size_t k = 0; k < members.size(); ++k)  // members grows as operands join
            for (auto operand : nodes[members[k]].operands) {
                const auto o = static_cast<std::size_t>(operand);
                if (member[o] || !joinable(o)) continue;
                if (pending[o] < 0) {
                    pending[o] = static_cast<std::int64_t>(readers[o].size());
                    counted.push_back(o);
                }
                if (--pending[o] > 0 || !fits(o)) continue;  // read outside the group (so far)
                const auto& n = nodes[o];
                if (!full && row_reduce(g, n)) full = &g[n.operands[0]].dims, row = &n.dims;
                if (!full && row_broadcast(g, n)) full = &n.dims, row = &g[n.operands[0]].dims;
                reduces = reduces || n.kind == op::reduce;
                member[o] = 1;
                members.push_back(o);
            }
        for (auto o : counted) pending[o] = -1;
        const bool keep = reduces && members.size() >= 2;
        for (auto m : members) {
            member[m] = 0;
            if (keep) claimed[m] = true;
            else tried[m] = 1;
        }
        if (!keep) continue;
        std::sort(members.begin(), members.end());
        fusion_group grp;
        for (auto m : members) grp.members.push_back(static_cast<node_id>(m));
        grp.row = full->back().extent;
        out.push_back(std::move(grp));
    }
    return out;
}

}  // namespace detail

// Fusible nodes joined to their fusible operands of the same shape form
// components. A component whose values are needed outside it at one node only
// (its last) runs as one group, however its members share values inside; in the
// other components, chains of single-use values are fused, and what is left runs
// as groups of one.
// Nodes outside `needed` (when given) are never run, so never grouped; nodes in
// `apart` (when given) run their own kernels.
inline fusion_plan plan_fusion(const graph& g, const std::vector<bool>* needed = nullptr, const std::vector<bool>* apart = nullptr) {
    const auto& nodes = g.nodes();
    const auto count = nodes.size();
    auto runs = [&](std::size_t i) { return !needed || (*needed)[i]; };
    std::vector<int> users(count, 0);
    for (std::size_t i = 0; i < count; ++i)
        if (runs(i))
            for (auto o : nodes[i].operands) ++users[static_cast<std::size_t>(o)];
    std::vector<bool> is_output(count, false);
    for (auto o : g.outputs()) is_output[static_cast<std::size_t>(o)] = true;
    std::vector<bool> ok(count), usable(count);
    for (std::size_t i = 0; i < count; ++i) {
        usable[i] = runs(i) && !(apart && (*apart)[i]);
        ok[i] = detail::fusible(g, nodes[i]) && usable[i];
    }
    std::vector<std::vector<std::size_t>> readers(count);
    for (std::size_t i = 0; i < count; ++i)
        if (runs(i))
            for (auto o : nodes[i].operands) readers[static_cast<std::size_t>(o)].push_back(i);

    fusion_plan plan;
    // Row groups first; the nodes they hold are out of the groups below.
    std::vector<bool> claimed(count, false);
    auto rows = detail::plan_rows(g, ok, usable, is_output, readers, claimed);
    std::vector<bool> fused_reader = ok;  // nodes whose operands a fused group reads
    for (std::size_t i = 0; i < count; ++i)
        if (claimed[i]) fused_reader[i] = true, ok[i] = false;
    auto joins = [&](std::size_t i, std::size_t o) { return ok[i] && ok[o] && nodes[o].dims == nodes[i].dims; };

    // A view is read in place when every reader is a fused node or another such
    // view (a row group's own broadcasts are its members, not views).
    plan.inlined.assign(count, false);
    for (std::size_t i = count; i-- > 0;) {
        if (!detail::is_view(nodes[i]) || claimed[i] || is_output[i] || readers[i].empty()) continue;
        plan.inlined[i] = std::all_of(readers[i].begin(), readers[i].end(),
                                      [&](std::size_t r) { return fused_reader[r] || plan.inlined[r]; });
    }

    std::vector<std::size_t> parent(count);
    for (std::size_t i = 0; i < count; ++i) parent[i] = i;
    auto find = [&](std::size_t x) {
        while (parent[x] != x) x = parent[x] = parent[parent[x]];
        return x;
    };
    for (std::size_t i = 0; i < count; ++i)
        for (auto o : nodes[i].operands)
            if (joins(i, static_cast<std::size_t>(o))) parent[find(i)] = find(static_cast<std::size_t>(o));

    plan.group_of.assign(count, -1);
    auto add_group = [&](std::vector<node_id> members) {
        for (auto m : members) plan.group_of[static_cast<std::size_t>(m)] = members.back();
        plan.groups.push_back({std::move(members)});
    };
    std::vector<std::vector<node_id>> components(count);
    for (std::size_t i = 0; i < count; ++i)
        if (ok[i]) components[find(i)].push_back(static_cast<node_id>(i));
    std::vector<bool> grouped(count, false);
    for (auto& comp : components) {
        if (comp.size() < 2) continue;
        std::vector<int> inside_users(count, 0);
        for (auto m : comp)
            for (auto o : nodes[static_cast<std::size_t>(m)].operands)
                if (joins(static_cast<std::size_t>(m), static_cast<std::size_t>(o))) ++inside_users[static_cast<std::size_t>(o)];
        int exits = 0;
        for (auto m : comp) {
            const auto mi = static_cast<std::size_t>(m);
            if (is_output[mi] || inside_users[mi] < users[mi]) ++exits;
        }
        const auto last = static_cast<std::size_t>(comp.back());
        if (exits == 1 && (is_output[last] || inside_users[last] < users[last])) {
            for (auto m : comp) grouped[static_cast<std::size_t>(m)] = true;
            add_group(comp);
        }
    }
    // Elsewhere: chains of single-use values, and single nodes.
    std::vector<std::vector<node_id>> members(count);
    for (std::size_t i = 0; i < count; ++i) {
        if (!ok[i] || grouped[i]) continue;
        std::vector<node_id> absorbed;
        for (auto o : nodes[i].operands) {
            const auto oi = static_cast<std::size_t>(o);
            if (!grouped[oi] && !members[oi].empty() && users[oi] == 1 && !is_output[oi] && joins(i, oi)) {
                absorbed.insert(absorbed.end(), members[oi].begin(), members[oi].end());
                members[oi].clear();
            }
        }
        std::sort(absorbed.begin(), absorbed.end());
        absorbed.push_back(static_cast<node_id>(i));
        members[i] = std::move(absorbed);
    }
    for (auto& m : members)
        if (!m.empty()) add_group(std::move(m));
    for (auto& grp : rows) {
        for (auto m : grp.members) plan.group_of[static_cast<std::size_t>(m)] = grp.members.back();
        plan.groups.push_back(std::move(grp));
    }
    std::sort(plan.groups.begin(), plan.groups.end(),
              [](const fusion_group& x, const fusion_group& y) { return x.members.back() < y.members.back(); });
    return plan;
}

// The node whose array an operand reads: itself, or the source of an inlined view.
inline node_id materialized(const graph& g, const fusion_plan& plan, node_id id) {
    while (plan.inlined[static_cast<std::size_t>(id)]) id = g[id].operands[0];
    return id;
}

namespace detail {

// Strides (in elements of the source array) of a value's elements, for the
// value's own row-major index; follows inlined views down to their source.
inline kernels::index view_strides(const graph& g, const fusion_plan& plan, node_id id) {
    const auto& n = g[id];
    if (!plan.inlined[static_cast<std::size_t>(id)]) return kernels::strides_of(n.dims);
    const auto src = view_strides(g, plan, n.operands[0]);
    kernels::index s(n.dims.size(), 0);
    if (n.kind == op::broadcast)
        for (std::size_t k = 0; k < n.axes.size(); ++k) s[static_cast<std::size_t>(n.axes[k])] = src[k];
    else  // transpose: output dimension k is the operand's dimension axes[k]
        for (std::size_t k = 0; k < s.size(); ++k) s[k] = src[static_cast<std::size_t>(n.axes[k])];
    return s;
}

// An input of a group: an array read through strides over the group's shape.
struct fused_input {
    const array* source;
    const kernels::index* strides;
    bool contiguous;  // strides are the group shape's own row-major ones
    bool scalar;      // one value for every element (a rank-0 operand, or all strides 0)
    bool row;         // read over a row group's row shape (else its full shape)
};

// The input's elements [begin, begin + count) of the group's shape, as f32: a
// pointer into the source when they lie there as f32 in a row, else converted
// into `block`. `idx` is scratch of the group's rank.
inline const float* load_input(const fused_input& in, const shape& dims, std::int64_t begin, std::int64_t count,
                               float* block, kernels::index& idx) {
    const array& a = *in.source;
    const auto* raw = a.data();
    const bool f32 = a.type() == dtype::f32;
    if (in.contiguous && f32) return reinterpret_cast<const float*>(raw) + begin;
    const auto rank = dims.size();
    std::int64_t rest = begin;
    for (std::size_t k = rank; k-- > 0;) {
        idx[k] = rest % dims[k].extent;
        rest /= dims[k].extent;
    }
    const auto& strides = *in.strides;
    const auto inner = rank ? dims[rank - 1].extent : 1, step = rank ? strides[rank - 1] : 0;
    if (f32 && step == 1 && inner - idx[rank - 1] >= count) {  // one run of the source, e.g. a bias row
        std::int64_t off = 0;
        for (std::size_t k = 0; k < rank; ++k) off += idx[k] * strides[k];
        return reinterpret_cast<const float*>(raw) + off;
    }
    visit(a.type(), [&](auto D) {
        using E = element<decltype(D)::value>;
        if (in.contiguous) {
            if constexpr (decltype(D)::value == dtype::f16)
                simd::widen(reinterpret_cast<const half*>(raw) + begin, block, count);
            else if constexpr (decltype(D)::value == dtype::bf16)
                simd::widen(reinterpret_cast<const bfloat16*>(raw) + begin, block, count);
            else if constexpr (decltype(D)::value == dtype::pred)
                simd::widen_pred(raw + begin, block, count);
            else
                for (std::int64_t j = 0; j < count; ++j) block[j] = static_cast<float>(E::load(raw, begin + j));
            return;
        }
        // Walk runs along the innermost dimension.
        std::int64_t done = 0;
        while (done < count) {
            std::int64_t off = 0;
            for (std::size_t k = 0; k < rank; ++k) off += idx[k] * strides[k];
            const auto run = rank ? std::min(inner - idx[rank - 1], count - done) : count;
            if (step == 0) {
                simd::fill(block + done, static_cast<float>(E::load(raw, off)), run);
            } else if (step == 1 && decltype(D)::value == dtype::pred) {  // an attention mask's row
                simd::widen_pred(raw + off, block + done, run);
            } else if (step == 1 && decltype(D)::value == dtype::f32) {
                std::memcpy(block + done, raw + off * 4, static_cast<std::size_t>(run) * 4);
            } else if (step == 1 && decltype(D)::value == dtype::f16) {
                simd::widen(reinterpret_cast<const half*>(raw) + off, block + done, run);
            } else if (step == 1 && decltype(D)::value == dtype::bf16) {
                simd::widen(reinterpret_cast<const bfloat16*>(raw) + off, block + done, run);
            } else {
                for (std::int64_t j = 0; j < run; ++j) block[done + j] = static_cast<float>(E::load(raw, off + j * step));
            }
            done += run;
            if (rank == 0) break;
            idx[rank - 1] += run;
            for (std::size_t k = rank; k-- > 1 && idx[k] == dims[k].extent;) {
                idx[k] = 0;
                ++idx[k - 1];
            }
        }
    });
    return block;
}

inline void round_to(dtype t, float* x, std::int64_t n) {
    if (t == dtype::f16) simd::round_through<half>(x, n);
    else if (t == dtype::bf16) simd::round_through<bfloat16>(x, n);
}

// Stores n f32 values as elements [begin, begin + n) of `out`.
inline void store_block(array& out, std::int64_t begin, const float* x, std::int64_t n) {
    auto* raw = out.mutable_data();
    if (out.type() == dtype::f16) return simd::narrow(x, reinterpret_cast<half*>(raw) + begin, n);
    if (out.type() == dtype::bf16) return simd::narrow(x, reinterpret_cast<bfloat16*>(raw) + begin, n);
    visit(out.type(), [&](auto D) {
        using E = element<decltype(D)::value>;
        if constexpr (std::is_same_v<typename E::compute, float>)
            for (std::int64_t j = 0; j < n; ++j) E::store(raw, begin + j, x[j]);
    });
}

}  // namespace detail

// What a group reads, found once per group (a graph's shapes are fixed) rather
// than in every run: for each member, where each operand comes from (an earlier
// member's result or one of the inputs), and for each input the node whose array
// it reads and the strides it is read through.
struct fused_layout {
    struct source {
        std::ptrdiff_t slot;   // an earlier member's result, or -1
        std::ptrdiff_t input;  // else an input, or -1
    };
    struct input {
        node_id node;  // materialized: the node whose array holds it
        kernels::index strides;
        bool contiguous, scalar;
        bool row = false;  // read over a row group's row shape (else its full shape)
    };
    std::vector<input> inputs;
    std::vector<std::vector<source>> sources;  // per member, per operand
    // A row group's shapes (the full one, and without its last dimension) and
    // which members are of the row shape.
    shape full, row;
    std::vector<char> row_member;
};

inline fused_layout layout_of(const graph& g, const fusion_plan& plan, const fusion_group& grp) {
    const auto& root = g[grp.members.back()];
    auto slot_of = [&](node_id id) -> std::ptrdiff_t {
        const auto it = std::find(grp.members.begin(), grp.members.end(), id);
        return it == grp.members.end() ? -1 : it - grp.members.begin();
    };
    fused_layout l;
    l.full = root.dims;
    if (grp.row)
        for (auto id : grp.members)
            if (g[id].kind == op::reduce) {
                l.full = g[g[id].operands[0]].dims;
                l.row = g[id].dims;
                break;
            }
    const auto own = kernels::strides_of(l.full), own_row = kernels::strides_of(l.row);
    for (auto id : grp.members) {
        const auto& n = g[id];
        const bool row_member = grp.row && detail::same_extents(n.dims, l.row);
        l.row_member.push_back(row_member);
        // What the member's operands are read over: a reduction's, the full shape; a
        // row broadcast's, the row shape; an element-wise op's, its own.
        const bool row_operands = grp.row && (n.kind == op::broadcast || (n.kind != op::reduce && row_member));
        std::vector<fused_layout::source> s;
        for (auto o : n.operands) {
            const auto slot = slot_of(o);
            if (slot >= 0) {
                s.push_back({slot, -1});
                continue;
            }
            auto strides = detail::view_strides(g, plan, o);
            if (g[o].dims.empty()) strides.assign((row_operands ? l.row : l.full).size(), 0);  // a rank-0 operand is broadcast
            const bool contiguous = strides == (row_operands ? own_row : own);
            const bool scalar = std::all_of(strides.begin(), strides.end(), [](std::int64_t x) { return x == 0; });
            // One input per array and way of reading it: several members reading x (a
            // layer norm's sum and its x - mean) load its block once.
            const auto src = materialized(g, plan, o);
            const auto same = std::find_if(l.inputs.begin(), l.inputs.end(), [&](const fused_layout::input& in) {
                return in.node == src && in.strides == strides && in.row == row_operands;
            });
            const auto at = same - l.inputs.begin();
            if (same == l.inputs.end()) l.inputs.push_back({src, std::move(strides), contiguous, scalar, row_operands});
            s.push_back({-1, at});
        }
        l.sources.push_back(std::move(s));
    }
    return l;
}

// Runs one group laid out by `layout` (layout_of): `value(id)` gives the array of
// a node outside the group.
// With `reuse`, the group writes its result over that operand's buffer (taken
// from *reuse, which the group must read only element for element, as the same
// type and shape: each chunk is read before it is written, so nothing is lost).
template <class Value>
array run_fused(const graph& g, const fusion_group& grp, const fused_layout& layout, Value&& value,
                thread_pool* pool = nullptr, array* reuse = nullptr, node_id reused = -1) {
    // Blocks of 2048 elements (8 KiB a member): a group's blocks outgrow L1 but sit in
    // L2, and each member's pass is four times as long as with 512. BERT-base's
    // element-wise groups at batch 8 (GELU, softmax, the add-norms; one Zen 1 core,
    // encoder_bench --profile, three alternating runs of each) took 215-222 ms a
    // run instead of 234-250; 4096 gained no more.
    constexpr std::int64_t chunk = 2048, parallel_from = 8192;  // elements
    const auto& root = g[grp.members.back()];
    auto out = reuse ? std::move(*reuse).relabel(root.dims) : array::uninitialized(root.type, root.dims);
    const auto total = out.size();
    const auto members = grp.members.size();
    const auto& sources = layout.sources;
    // A block: `chunk` elements, or in a row group as many whole rows as fill it
    // (at least one); `width` floats of scratch per member and input.
    const std::int64_t row = grp.row;
    const std::int64_t per_block = row ? std::max<std::int64_t>(1, chunk / row) : chunk;
    const std::int64_t width = row ? per_block * row : chunk;
    const std::int64_t units = row ? element_count(layout.row) : total;  // rows, or elements
    const bool root_row = row && layout.row_member.back();
    std::vector<detail::fused_input> inputs;
    inputs.reserve(layout.inputs.size());
    for (const auto& in : layout.inputs)
        inputs.push_back({reuse && in.node == reused ? &out : &value(in.node), &in.strides, in.contiguous, in.scalar, in.row});
    float* out_f32 = root.type == dtype::f32 ? reinterpret_cast<float*>(out.mutable_data()) : nullptr;

    auto run_chunks = [&](std::int64_t first, std::int64_t last) {
        // The members' results and a block per input, in one buffer per thread kept
        // between runs (every element is written before it is read). Blocks aligned
        // to 64 bytes: a vector store that splits a cache line costs two.
        thread_local simd::aligned_vector<float> storage;
        const auto need = (members + inputs.size()) * static_cast<std::size_t>(width);
        if (storage.size() < need) storage.resize(need);
        float* const scratch = storage.data();
        float* const input_blocks = scratch + members * static_cast<std::size_t>(width);
        kernels::index idx(layout.full.size());
        // Each input's elements for the chunk, loaded on first use: an input that
        // several members read (gelu's x, five times) is converted from f16/bf16 or
        // gathered once per chunk, not once per read. Scalars are spread over their
        // block once, not per chunk.
        std::vector<const float*> loaded(inputs.size(), nullptr);
        for (std::size_t k = 0; k < inputs.size(); ++k)
            if (inputs[k].scalar) {
                const auto& a = *inputs[k].source;
                const float v = visit(a.type(), [&](auto D) { return static_cast<float>(element<decltype(D)::value>::load(a.data(), 0)); });
                float* block = input_blocks + static_cast<std::int64_t>(k) * width;
                std::fill(block, block + width, v);
                loaded[k] = block;
            }
        for (std::int64_t c = first; c < last; ++c) {
            // This block's elements of the full shape, and (row groups) its rows.
            const auto u0 = c * per_block, n_units = std::min(per_block, units - u0);
            const auto full_begin = row ? u0 * row : u0, full_count = row ? n_units * row : n_units;
            for (std::size_t k = 0; k < inputs.size(); ++k)
                if (!inputs[k].scalar) loaded[k] = nullptr;
            for (std::size_t m = 0; m < members; ++m) {
                const auto& n = g[grp.members[m]];
                const bool by_row = row && layout.row_member[m];
                const auto begin = by_row ? u0 : full_begin, count = by_row ? n_units : full_count;
                const float* in[3] = {nullptr, nullptr, nullptr};
                for (std::size_t k = 0; k < sources[m].size() && k < 3; ++k) {
                    const auto& s = sources[m][k];
                    if (s.slot >= 0) {
                        in[k] = scratch + s.slot * width;
                    } else {
                        const auto i = static_cast<std::size_t>(s.input);
                        if (!loaded[i]) {
                            const bool r = inputs[i].row;
                            loaded[i] = detail::load_input(inputs[i], r ? layout.row : layout.full, r ? u0 : full_begin,
                                                           r ? n_units : full_count, input_blocks + static_cast<std::int64_t>(i) * width, idx);
                        }
                        in[k] = loaded[i];
                    }
                }
                // A 16-bit member's results are rounded as the unfused op would store them,
                // as XLA does: a bf16 member's in the pass that computes them where the
                // vectors are AVX2's or wider (with SSE2's, a build for any x86-64, round_to's
                // separate pass, which runs AVX2 where the CPU has it, is faster). A 16-bit
                // root is not: store_block rounds it as it narrows it.
                const bool is_root = m + 1 == members, bf16 = !is_root && simd::lanes >= 8 && n.type == dtype::bf16;
                bool rounded = false;  // by the op's own pass
                float* dst = is_root && out_f32 ? out_f32 + begin : scratch + static_cast<std::int64_t>(m) * width;
                if (row && n.kind == op::reduce) {  // each row as the reduce kernel reduces it
                    for (std::int64_t r = 0; r < n_units; ++r) dst[r] = simd::reduce(n.reduction, in[0] + r * row, row);
                } else if (row && n.kind == op::broadcast) {  // a row value along its row
                    for (std::int64_t r = 0; r < n_units; ++r) simd::fill(dst + r * row, in[0][r], row);
                    continue;  // the operand's type: rounded already
                } else if (n.kind == op::stop_gradient || n.kind == op::reshape) {
                    std::copy(in[0], in[0] + count, dst);
                    continue;
                } else if (n.kind == op::convert) {
                    std::copy(in[0], in[0] + count, dst);  // rounded to the target type below
                } else if (n.kind == op::select) {
                    simd::select(in[0], in[1], in[2], dst, count);
                } else if (is_unary(n.kind)) {
                    rounded = bf16 && simd::unary<true>(n.kind, in[0], dst, count);
                    if (!rounded && !simd::unary(n.kind, in[0], dst, count))
                        for (std::int64_t j = 0; j < count; ++j) dst[j] = kernels::unary_value<float>(n.kind, in[0][j]);
                } else {
                    rounded = bf16 && simd::binary<true>(n.kind, in[0], in[1], dst, count);
                    if (!rounded && !simd::binary(n.kind, in[0], in[1], dst, count))
                        for (std::int64_t j = 0; j < count; ++j) dst[j] = kernels::binary_value<float>(n.kind, in[0][j], in[1][j]);
                }
                if (n.type != dtype::f32 && !is_root && !rounded) detail::round_to(n.type, dst, count);
            }
            if (!out_f32)
                detail::store_block(out, root_row ? u0 : full_begin, scratch + static_cast<std::int64_t>(members - 1) * width,
                                    root_row ? n_units : full_count);
        }
    };
    const auto chunks = (units + per_block - 1) / per_block;
    const auto elements = row ? units * row : total;
    if (pool && pool->size() > 1 && elements >= parallel_from && chunks > 1) {
        pool->run([&](unsigned t) {
            const auto [c0, c1] = pool->part(chunks, t);
            run_chunks(c0, c1);
        });
    } else {
        run_chunks(0, chunks);
    }
    return out;
}

}  // namespace scribe::cpu
