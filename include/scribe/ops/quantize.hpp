// scribe/ops/quantize.hpp — weights stored as 8-bit or 4-bit integers in blocks of
// 32 with one f16 scale each (llama.cpp's Q8_0 and Q4_0), read by the graph as
// float weights.
//
// A weight w[out..., in...] (in: the dims its products contract, flattened in
// order into k elements) is stored, each block 32 consecutive elements of a row
// of k, as (weight_format::q8)
//   q      s8 [out..., q8_blocks, q8_block]   q = round(w / d), half away from zero
//   scale  f16[out..., q8_blocks]              d = max |w| over the block / 127
// and the graph reads it back as
//   w = reshape(convert<f32>(q) * broadcast(convert<f32>(scale)), [out..., in...])
// or as (weight_format::q4, ggml's quantize_row_q4_0_ref)
//   q      u8 [out..., q4_blocks, q4_pair]    16 bytes: element i in the low four bits
//                                             of byte i, element 16 + i in the high four
//   scale  f16[out..., q4_blocks]             d = (the element of largest |w|) / -8
// each element's four bits n = min(15, trunc(w / d + 8.5)), read back as
//   w = reshape((convert<f32>(concatenate(q & 15, q >> 4)) - 8) * broadcast(convert<f32>(scale)), ...)
// converted to the model's dtype and transposed to the order the model declared
// (GPT-2's Conv1D weights are [in, out]). That is plain HLO (convert, multiply,
// broadcast, reshape, transpose; for q4 also and, shift and concatenate) any XLA
// runs, with s8 or u8 weights and f16 scales as
// the module's parameters; the CPU executor recognises the pattern under a product
// or a gather and reads q and scale directly, never making w (cpu/quantized.hpp).
//
// A weight whose in-extent is not a multiple of 32, or that has only one dim,
// stays a float weight (as llama.cpp's converter keeps such tensors in F16/F32).
//
// A product with a q8 or q4 weight reads its input as llama.cpp's Q8_0 and Q4_0
// products do (ggml's vec_dot_type for both is Q8_0): the input is quantized in blocks of 32
// along the contracted elements, in the weight's order, by the same rule (the
// scale rounded to f16), and read back as q * d (input_for_product). The dot of
// ops/dot.hpp applies it when its right operand is a q8 weight, so a model's code
// does not change, XLA computes exactly what a llama.cpp-style integer kernel
// does, and the CPU runs those products as int8 x int8 sums (cpu/quantized.hpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../graph/graph.hpp"
#include "../graph/ir.hpp"
#include "../core/dtype.hpp"

namespace scribe {

// How a model's matrices are stored: as the run's float dtype, or in blocks of
// 32 integers with an f16 scale each (8-bit q8 or 4-bit q4), read back in the
// graph as the float dtype.
enum class weight_format : std::uint8_t { plain, q8, q4 };

inline std::string_view name(weight_format f) {
    return f == weight_format::q8 ? "q8" : f == weight_format::q4 ? "q4" : "plain";
}

}  // namespace scribe

// The namespace is named for the Q8_0 blocks every format's products read their
// inputs in; it holds the q4 weights too.
namespace scribe::q8 {

inline constexpr std::int64_t block = 32;
inline constexpr std::string_view blocks_dim = "q8_blocks", block_dim = "q8_block";

// How a block format stores q: the element type, the bytes of a block, and the
// names of q's last two dims.
struct block_storage {
    dtype type;
    std::int64_t bytes;
    std::string_view blocks_dim, bytes_dim;
};

inline block_storage storage(weight_format f) {
    if (f == weight_format::q4) return {dtype::u8, block / 2, "q4_blocks", "q4_pair"};
    return {dtype::s8, block, blocks_dim, block_dim};
}

// Stored bytes per 32 weights: 34 (q8) or 18 (q4).
inline std::int64_t block_bytes(weight_format f) { return storage(f).bytes + 2; }

// The two parameters of a q8 weight: `name` holds q, scale_name(name) the scales.
inline constexpr std::string_view scale_suffix = ".scale";
inline std::string scale_name(const std::string& name) { return name + std::string(scale_suffix); }

// Where a weight's elements go when it is stored as q8.
struct layout {
    shape value;                    // [out..., in...]: the declared dims, in ones last
    std::vector<std::int64_t> perm;  // declared dim i is value dim perm[i]
    shape q, scale;                 // the two stored tensors' dims
    std::int64_t rows = 0, k = 0;   // value as a [rows][k] matrix
    weight_format format = weight_format::q8;
    bool transposed() const {
        for (std::size_t i = 0; i < perm.size(); ++i)
            if (perm[i] != static_cast<std::int64_t>(i)) return true;
        return false;
    }
};

// The layout in format f (q8 or q4) of a weight of declared dims `dims` whose
// dims named `in` are contracted, or nullopt when it stays a float weight:
// fewer than two dims, no in-dim or only in-dims, or k not a multiple of 32
// (and always for weight_format::plain).
inline std::optional<layout> plan(const shape& dims, const std::vector<std::string>& in, weight_format f = weight_format::q8) {
    if (f == weight_format::plain || dims.size() < 2 || in.empty()) return std::nullopt;
    layout l;
    l.format = f;
    std::vector<std::int64_t> outs, ins;
    for (std::size_t i = 0; i < dims.size(); ++i)
        (std::find(in.begin(), in.end(), dims[i].name) != in.end() ? ins : outs).push_back(static_cast<std::int64_t>(i));
    if (ins.size() != in.size() || outs.empty()) return std::nullopt;
    l.rows = 1;
    l.k = 1;
    for (auto i : outs) l.rows *= dims[static_cast<std::size_t>(i)].extent;
    for (auto i : ins) l.k *= dims[static_cast<std::size_t>(i)].extent;
    if (l.k % block != 0) return std::nullopt;
    std::vector<std::int64_t> order = outs;
    order.insert(order.end(), ins.begin(), ins.end());
    l.perm.assign(dims.size(), 0);
    for (std::size_t v = 0; v < order.size(); ++v) {
        l.value.push_back(dims[static_cast<std::size_t>(order[v])]);
        l.perm[static_cast<std::size_t>(order[v])] = static_cast<std::int64_t>(v);
    }
    const auto st = storage(f);
    for (auto i : outs) l.q.push_back(dims[static_cast<std::size_t>(i)]);
    l.scale = l.q;
    l.scale.push_back({std::string(st.blocks_dim), l.k / block});
    l.q.push_back({std::string(st.blocks_dim), l.k / block});
    l.q.push_back({std::string(st.bytes_dim), st.bytes});
    return l;
}

// The weight, in dtype t and its declared dims, from the parameters q (s8 or u8)
// and scale (f16) of layout l.
inline node_id dequantize(graph& g, node_id q, node_id scale, const layout& l, dtype t) {
    node_id values = -1;
    if (l.format == weight_format::q4) {  // the two four-bit halves side by side, less 8
        const auto cat = ir::concatenate(g, {ir::binary(g, op::bitwise_and, q, 15.0), ir::binary(g, op::shift_right_logical, q, 4.0)},
                                         static_cast<std::int64_t>(l.q.size()) - 1);
        values = ir::binary(g, op::sub, ir::convert(g, cat, dtype::f32), 8.0);
    } else {
        values = ir::convert(g, q, dtype::f32);
    }
    std::vector<std::int64_t> axes(l.scale.size());
    for (std::size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<std::int64_t>(i);
    const auto scales = ir::broadcast(g, ir::convert(g, scale, dtype::f32), ir::dims_of(g, values), std::move(axes));
    const auto w = ir::reshape(g, ir::convert(g, ir::binary(g, op::mul, values, scales), t), l.value);
    return ir::transpose(g, w, l.perm);
}

// The parameters and layout a q8 or q4 weight's value node reads: the nodes
// dequantize made (a reshape of values(q) * broadcast(convert(scale)), maybe
// converted, maybe transposed), recognised from their shape.
struct weight_nodes {
    node_id q = -1, scale = -1;
    weight_format format = weight_format::q8;
    shape value;                    // [out..., in...]
    std::vector<std::int64_t> perm;  // the final transpose's, or empty
    std::size_t outs = 0;           // how many of value's dims are out-dims
};

// A q4 weight's values, convert<f32>(concatenate(q & 15, q >> 4)) - 8 over q's
// last dim: q, or nullopt.
inline std::optional<node_id> match_q4_values(const graph& g, const node& values) {
    auto constant = [&](node_id n, double v) {  // `full` of v
        if (g[n].kind == op::broadcast && g[n].axes.empty()) n = g[n].operands[0];
        return g[n].kind == op::constant && static_cast<int>(g[n].literal.size()) == info(g[n].type).bytes &&
               load_as_double(g[n].type, g[n].literal.data()) == v;
    };
    if (values.kind != op::sub || values.type != dtype::f32 || !constant(values.operands[1], 8.0)) return std::nullopt;
    const node& wide = g[values.operands[0]];
    if (wide.kind != op::convert) return std::nullopt;
    const node& cat = g[wide.operands[0]];
    if (cat.kind != op::concatenate || cat.operands.size() != 2 || cat.type != dtype::u8 ||
        cat.axes != std::vector<std::int64_t>{static_cast<std::int64_t>(cat.dims.size()) - 1})
        return std::nullopt;
    const node& lo = g[cat.operands[0]];
    const node& hi = g[cat.operands[1]];
    if (lo.kind != op::bitwise_and || hi.kind != op::shift_right_logical || lo.operands[0] != hi.operands[0] ||
        !constant(lo.operands[1], 15.0) || !constant(hi.operands[1], 4.0))
        return std::nullopt;
    return lo.operands[0];
}

inline std::optional<weight_nodes> match(const graph& g, node_id id) {
    weight_nodes m;
    const node* n = &g[id];
    if (n->kind == op::transpose) {
        m.perm = n->axes;
        n = &g[n->operands[0]];
    }
    if (n->kind != op::reshape) return std::nullopt;
    m.value = n->dims;
    n = &g[n->operands[0]];
    if (n->kind == op::convert) n = &g[n->operands[0]];
    if (n->kind != op::mul || n->type != dtype::f32) return std::nullopt;
    const node& values = g[n->operands[0]];
    const node& scales = g[n->operands[1]];
    if (scales.kind != op::broadcast || g[scales.operands[0]].kind != op::convert) return std::nullopt;
    if (values.kind == op::convert) {
        m.q = values.operands[0];
    } else if (const auto q4 = match_q4_values(g, values)) {
        m.q = *q4;
        m.format = weight_format::q4;
    } else {
        return std::nullopt;
    }
    m.scale = g[scales.operands[0]].operands[0];
    const node& q = g[m.q];
    const node& s = g[m.scale];
    const auto r = q.dims.size();
    const auto st = storage(m.format);
    if (q.kind != op::parameter || q.type != st.type || s.kind != op::parameter || s.type != dtype::f16 || r < 3 ||
        q.dims[r - 1].extent != st.bytes || s.dims.size() != r - 1)
        return std::nullopt;
    for (std::size_t i = 0; i + 1 < r; ++i)
        if (s.dims[i].extent != q.dims[i].extent || scales.axes[i] != static_cast<std::int64_t>(i)) return std::nullopt;
    m.outs = r - 2;
    if (m.value.size() <= m.outs) return std::nullopt;
    return m;
}

// x as a q8 product's input: blocks of 32 consecutive elements over x's dims `k`
// (flattened in that order), each quantized as quantize_row_q8_0 does and read
// back: d = max |x| / 127, q = round(x * (1 / d)) half away from zero (0 where d
// is 0 or 1 / d is infinite), value q * f32(f16(d)). x's other dims and order are kept.
inline node_id quantize_input(graph& g, node_id x, const std::vector<std::int64_t>& k) {
    const auto type = g[x].type;
    const shape dims = g[x].dims;
    std::vector<std::int64_t> perm;
    shape lead;
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(dims.size()); ++i)
        if (std::find(k.begin(), k.end(), i) == k.end()) {
            perm.push_back(i);
            lead.push_back(dims[static_cast<std::size_t>(i)]);
        }
    std::int64_t extent = 1;
    for (auto a : k) {
        perm.push_back(a);
        extent *= dims[static_cast<std::size_t>(a)].extent;
    }
    if (extent % block != 0) return x;
    const auto moved = ir::transpose(g, ir::convert(g, x, dtype::f32), perm);
    const shape moved_dims = g[moved].dims;
    shape scales = lead, blocks = lead;
    scales.push_back({std::string(blocks_dim), extent / block});
    blocks = scales;
    blocks.push_back({std::string(block_dim), block});
    std::vector<std::int64_t> per_block(scales.size());
    for (std::size_t i = 0; i < per_block.size(); ++i) per_block[i] = static_cast<std::int64_t>(i);
    const auto xb = ir::reshape(g, moved, blocks);
    const auto amax = ir::reduce(g, ir::unary(g, op::abs, xb), {static_cast<std::int64_t>(blocks.size()) - 1}, reducer::max);
    const auto d = ir::binary(g, op::div, amax, 127.0);
    const auto zero = ir::full(g, dtype::f32, scales, 0.0);
    const auto id = ir::select(g, ir::compare(g, comparison::eq, d, zero), zero, ir::binary(g, op::div, 1.0, d));
    const auto v = ir::binary(g, op::mul, xb, ir::broadcast(g, id, blocks, per_block));
    // round half away from zero, exactly: |v| = f + r with f = floor |v|, and r >= 1/2 iff floor(2r) = 1
    const auto a = ir::unary(g, op::abs, v);
    const auto f = ir::unary(g, op::floor, a);
    const auto up = ir::unary(g, op::floor, ir::binary(g, op::mul, ir::binary(g, op::sub, a, f), 2.0));
    // A block whose d is subnormal has an infinite 1 / d: its values become 0, as
    // ggml's conversion of an infinity to int8 gives on x86 (and gguf's NumPy does).
    const auto finite = ir::compare(g, comparison::lt, a, ir::full(g, dtype::f32, blocks, std::numeric_limits<double>::infinity()));
    const auto q = ir::select(g, finite, ir::binary(g, op::mul, ir::unary(g, op::sign, v), ir::binary(g, op::add, f, up)),
                              ir::full(g, dtype::f32, blocks, 0.0));
    const auto d16 = ir::convert(g, ir::convert(g, d, dtype::f16), dtype::f32);
    // q held as int8, as the integer kernels hold it (so a -0 is 0).
    const auto held = ir::convert(g, ir::convert(g, q, dtype::s8), dtype::f32);
    const auto back = ir::reshape(g, ir::binary(g, op::mul, held, ir::broadcast(g, d16, blocks, per_block)), moved_dims);
    std::vector<std::int64_t> inverse(perm.size());
    for (std::size_t i = 0; i < perm.size(); ++i) inverse[static_cast<std::size_t>(perm[i])] = static_cast<std::int64_t>(i);
    return ir::convert(g, ir::transpose(g, back, inverse), type);
}

// The node quantize_input read when `id` is the multiply it ends in (q * d, in
// blocks [..., q8_blocks, q8_block]): its x in blocks, or nullopt. The CPU runs
// that multiply as one kernel from x (cpu/quantized.hpp), so every node of the
// rule is checked here, constants included: what matches computes exactly it.
inline std::optional<node_id> match_input(const graph& g, node_id id) {
    const node& m = g[id];
    const auto r = m.dims.size();
    if (m.kind != op::mul || m.type != dtype::f32 || r < 2 || m.dims[r - 1].extent != block) return std::nullopt;
    auto is = [&](node_id n, op k, dtype t = dtype::f32) { return g[n].kind == k && g[n].type == t; };
    auto constant = [&](node_id n, double v) {  // `full` of v in f32
        if (is(n, op::broadcast) && g[n].axes.empty()) n = g[n].operands[0];
        return is(n, op::constant) && g[n].literal.size() == 4 && load_as_double(dtype::f32, g[n].literal.data()) == v;
    };
    auto operand = [&](node_id n, std::size_t i) { return g[n].operands.at(i); };
    auto per_block = [&](node_id n) {  // a broadcast of [..., q8_blocks] over the block
        if (!is(n, op::broadcast) || g[n].axes.size() != r - 1) return false;
        for (std::size_t i = 0; i + 1 < r; ++i)
            if (g[n].axes[i] != static_cast<std::int64_t>(i)) return false;
        return true;
    };
    // q * f32(f16(d)), q held as int8
    const auto held = operand(id, 0), scale = operand(id, 1);
    if (!is(held, op::convert) || !is(operand(held, 0), op::convert, dtype::s8) || !per_block(scale)) return std::nullopt;
    const auto d16 = operand(scale, 0);
    if (!is(d16, op::convert) || !is(operand(d16, 0), op::convert, dtype::f16)) return std::nullopt;
    const auto d = operand(operand(d16, 0), 0);  // max |x| / 127
    if (!is(d, op::div) || !constant(operand(d, 1), 127.0)) return std::nullopt;
    const auto amax = operand(d, 0);
    if (!is(amax, op::reduce) || g[amax].reduction != reducer::max || g[amax].axes != std::vector<std::int64_t>{static_cast<std::int64_t>(r) - 1} ||
        !is(operand(amax, 0), op::abs))
        return std::nullopt;
    const auto xb = operand(operand(amax, 0), 0);
    if (g[xb].type != dtype::f32 || g[xb].dims != m.dims) return std::nullopt;
    // q = finite ? sign(v) * (f + floor(2 (a - f))) : 0, a = |v|, f = floor(a), v = x * (d == 0 ? 0 : 1 / d)
    const auto q = operand(operand(held, 0), 0);
    if (!is(q, op::select) || !constant(operand(q, 2), 0.0)) return std::nullopt;
    const auto finite = operand(q, 0), rounded = operand(q, 1);
    if (g[finite].kind != op::compare || g[finite].direction != comparison::lt ||
        !constant(operand(finite, 1), std::numeric_limits<double>::infinity()))
        return std::nullopt;
    const auto a = operand(finite, 0);
    if (!is(a, op::abs) || !is(rounded, op::mul) || !is(operand(rounded, 0), op::sign) || !is(operand(rounded, 1), op::add)) return std::nullopt;
    const auto v = operand(a, 0);
    if (operand(operand(rounded, 0), 0) != v || !is(v, op::mul) || operand(v, 0) != xb || !per_block(operand(v, 1))) return std::nullopt;
    const auto f = operand(operand(rounded, 1), 0), up = operand(operand(rounded, 1), 1);
    if (!is(f, op::floor) || operand(f, 0) != a || !is(up, op::floor)) return std::nullopt;
    const auto twice = operand(up, 0);
    if (!is(twice, op::mul) || !constant(operand(twice, 1), 2.0) || !is(operand(twice, 0), op::sub) || operand(operand(twice, 0), 0) != a ||
        operand(operand(twice, 0), 1) != f)
        return std::nullopt;
    const auto inv = operand(operand(v, 1), 0);
    if (!is(inv, op::select) || !constant(operand(inv, 1), 0.0) || !is(operand(inv, 2), op::div) || !constant(operand(operand(inv, 2), 0), 1.0) ||
        operand(operand(inv, 2), 1) != d)
        return std::nullopt;
    const auto zero_d = operand(inv, 0);
    if (g[zero_d].kind != op::compare || g[zero_d].direction != comparison::eq || operand(zero_d, 0) != d || !constant(operand(zero_d, 1), 0.0))
        return std::nullopt;
    return xb;
}

// The input a dot of x (contracting its dims x_k) with w (over w's dims w_k, in
// the same order) reads: x quantized as above when w is a q8 or q4 weight and the dot
// contracts all of its in-dims, else x.
inline node_id input_for_product(graph& g, node_id x, node_id w, const std::vector<std::int64_t>& x_k,
                                 const std::vector<std::int64_t>& w_k) {
    if (!is_float(g[x].type) || x_k.size() != w_k.size()) return x;
    const auto m = match(g, w);
    if (!m || w_k.size() != m->value.size() - m->outs) return x;
    // w's dim a is value dim perm[a]; the in-dims are value's last ones, and x's
    // k dims go in their order.
    std::vector<std::int64_t> order(w_k.size(), -1);
    for (std::size_t i = 0; i < w_k.size(); ++i) {
        const auto a = static_cast<std::size_t>(w_k[i]);
        const auto at = m->perm.empty() ? static_cast<std::int64_t>(a) : m->perm.at(a);
        const auto slot = at - static_cast<std::int64_t>(m->outs);
        if (slot < 0 || slot >= static_cast<std::int64_t>(order.size()) || order[static_cast<std::size_t>(slot)] != -1) return x;
        order[static_cast<std::size_t>(slot)] = x_k[i];
    }
    return quantize_input(g, x, order);
}

}  // namespace scribe::q8
