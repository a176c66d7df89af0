// scribe/cpu/fusion.hpp — element-wise fusion.
//
// A chain such as gelu(x * w + b) is many IR nodes; run one by one, each writes a
// full-size buffer that the next reads back. The plan below groups float
// element-wise nodes of one shape whose values are not needed outside the group,
// and the group runs in one pass: chunk by chunk, each member's values live in a
// small scratch block (in L1), and only the group's root writes memory. Inputs
// of the group are read straight from their arrays; rank-0 operands are broadcast.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "array.hpp"
#include "element.hpp"
#include "kernels.hpp"

namespace scribe::cpu {

// One fused group: its members in evaluation order, the last being the root.
struct fusion_group {
    std::vector<node_id> members;
};

struct fusion_plan {
    std::vector<node_id> group_of;  // for each node: the root of its group, or -1
    std::vector<fusion_group> groups;

    // "fused 4 nodes into multiply.1 ... (3 buffers saved)", one line per group.
    std::string report(const graph& g) const {
        std::string out;
        for (const auto& grp : groups) {
            out += "fused " + std::to_string(grp.members.size()) + " nodes:";
            for (auto id : grp.members) out += " " + std::string(info(g[id].kind).name) + "#" + std::to_string(id);
            out += " (" + std::to_string(grp.members.size() - 1) + " intermediate buffers avoided)\n";
        }
        return out;
    }
};

namespace detail {

inline bool float_fusible_type(dtype t) { return t == dtype::f32 || t == dtype::f16 || t == dtype::bf16; }

// Element-wise nodes the fused kernel evaluates, on f32/f16/bf16 values.
inline bool fusible(const graph& g, const node& n) {
    if (!float_fusible_type(n.type)) return false;
    if (is_unary(n.kind) || (is_binary(n.kind))) return true;
    if (n.kind == op::convert) return float_fusible_type(g[n.operands[0]].type);
    // A rank-0 value broadcast to a shape: the fused kernel reads the scalar.
    return n.kind == op::broadcast && g[n.operands[0]].dims.empty();
}

}  // namespace detail

// Fusible nodes joined to their fusible operands of the same shape form
// components. A component whose values are needed outside it at one node only
// (its last) runs as one group, however its members share values inside; in the
// other components, chains of single-use values are fused.
inline fusion_plan plan_fusion(const graph& g) {
    const auto& nodes = g.nodes();
    const auto count = nodes.size();
    std::vector<int> users(count, 0);
    for (const auto& n : nodes)
        for (auto o : n.operands) ++users[static_cast<std::size_t>(o)];
    std::vector<bool> is_output(count, false);
    for (auto o : g.outputs()) is_output[static_cast<std::size_t>(o)] = true;
    std::vector<bool> ok(count);
    for (std::size_t i = 0; i < count; ++i) ok[i] = detail::fusible(g, nodes[i]);
    auto joins = [&](std::size_t i, std::size_t o) { return ok[i] && ok[o] && nodes[o].dims == nodes[i].dims; };

    std::vector<std::size_t> parent(count);
    for (std::size_t i = 0; i < count; ++i) parent[i] = i;
    auto find = [&](std::size_t x) {
        while (parent[x] != x) x = parent[x] = parent[parent[x]];
        return x;
    };
    for (std::size_t i = 0; i < count; ++i)
        for (auto o : nodes[i].operands)
            if (joins(i, static_cast<std::size_t>(o))) parent[find(i)] = find(static_cast<std::size_t>(o));

    fusion_plan plan;
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
    // Elsewhere: chains of single-use values.
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
        if (m.size() > 1) add_group(std::move(m));
    std::sort(plan.groups.begin(), plan.groups.end(),
              [](const fusion_group& x, const fusion_group& y) { return x.members.back() < y.members.back(); });
    return plan;
}

// Runs one group: `value(id)` gives the array of a node outside the group.
template <class Value>
array run_fused(const graph& g, const fusion_group& grp, Value&& value) {
    constexpr std::int64_t chunk = 512;
    const auto& root = g[grp.members.back()];
    array out(root.type, root.dims);
    const auto total = out.size();
    auto slot_of = [&](node_id id) -> std::ptrdiff_t {
        const auto it = std::find(grp.members.begin(), grp.members.end(), id);
        return it == grp.members.end() ? -1 : it - grp.members.begin();
    };
    // For each member and operand: its scratch slot, or the outside array it reads.
    struct source {
        std::ptrdiff_t slot;
        const array* outside;
    };
    std::vector<std::vector<source>> sources;
    for (auto id : grp.members) {
        std::vector<source> s;
        for (auto o : g[id].operands) {
            const auto slot = slot_of(o);
            s.push_back({slot, slot < 0 ? &value(o) : nullptr});
        }
        sources.push_back(std::move(s));
    }
    std::vector<float> scratch(grp.members.size() * chunk);
    std::vector<float> operand_block(2 * chunk);
    auto load_outside = [](const array& a, std::int64_t begin, std::int64_t count, float* dst) {
        visit(a.type(), [&](auto D) {
            using E = element<decltype(D)::value>;
            if (a.dims().empty()) {
                std::fill(dst, dst + count, static_cast<float>(E::load(a.data(), 0)));
            } else {
                for (std::int64_t j = 0; j < count; ++j) dst[j] = static_cast<float>(E::load(a.data(), begin + j));
            }
        });
    };
    for (std::int64_t begin = 0; begin < total; begin += chunk) {
        const auto count = std::min(chunk, total - begin);
        for (std::size_t m = 0; m < grp.members.size(); ++m) {
            const auto& n = g[grp.members[m]];
            const float* in[2] = {nullptr, nullptr};
            for (std::size_t k = 0; k < sources[m].size() && k < 2; ++k) {
                const auto& s = sources[m][k];
                if (s.slot >= 0) {
                    in[k] = scratch.data() + s.slot * chunk;
                } else {
                    load_outside(*s.outside, begin, count, operand_block.data() + k * chunk);
                    in[k] = operand_block.data() + k * chunk;
                }
            }
            float* dst = scratch.data() + static_cast<std::int64_t>(m) * chunk;
            if (n.kind == op::broadcast || n.kind == op::convert) {
                // Values pass through; the conversion happens where the root is stored.
                std::copy(in[0], in[0] + count, dst);
                if (n.kind == op::convert && n.type != dtype::f32)
                    for (std::int64_t j = 0; j < count; ++j)  // round to the narrower type now, as XLA does
                        dst[j] = n.type == dtype::f16 ? f16_bits_to_f32(f32_to_f16_bits(dst[j]))
                                                      : bf16_bits_to_f32(f32_to_bf16_bits(dst[j]));
            } else if (is_unary(n.kind)) {
                for (std::int64_t j = 0; j < count; ++j) dst[j] = kernels::unary_value<float>(n.kind, in[0][j]);
            } else {
                for (std::int64_t j = 0; j < count; ++j) dst[j] = kernels::binary_value<float>(n.kind, in[0][j], in[1][j]);
            }
            // A 16-bit intermediate is rounded as the unfused op would store it.
            if (n.type == dtype::f16 && n.kind != op::convert)
                for (std::int64_t j = 0; j < count; ++j) dst[j] = f16_bits_to_f32(f32_to_f16_bits(dst[j]));
            if (n.type == dtype::bf16 && n.kind != op::convert)
                for (std::int64_t j = 0; j < count; ++j) dst[j] = bf16_bits_to_f32(f32_to_bf16_bits(dst[j]));
        }
        const float* result = scratch.data() + static_cast<std::int64_t>(grp.members.size() - 1) * chunk;
        visit(root.type, [&](auto D) {
            using E = element<decltype(D)::value>;
            for (std::int64_t j = 0; j < count; ++j)
                E::store(out.mutable_data(), begin + j, static_cast<typename E::compute>(result[j]));
        });
    }
    return out;
}

}  // namespace scribe::cpu
