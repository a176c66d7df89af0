// scribe/ops/quantize.hpp — weights stored as 8-bit integers in blocks of 32 with
// one f16 scale each (llama.cpp's Q8_0), read by the graph as float weights.
//
// A weight w[out..., in...] (in: the dims its products contract, flattened in
// order into k elements) is stored as
//   q      s8 [out..., q8_blocks, q8_block]   q = round(w / d), half away from zero
//   scale  f16[out..., q8_blocks]              d = max |w| over the block / 127
// each block 32 consecutive elements of a row of k, and the graph reads it back as
//   w = reshape(convert<f32>(q) * broadcast(convert<f32>(scale)), [out..., in...])
// converted to the model's dtype and transposed to the order the model declared
// (GPT-2's Conv1D weights are [in, out]). That is plain HLO (convert, multiply,
// broadcast, reshape, transpose) any XLA runs, with s8 weights and f16 scales as
// the module's parameters; the CPU executor recognises the pattern under a product
// or a gather and reads q and scale directly, never making w (cpu/quantized.hpp).
//
// A weight whose in-extent is not a multiple of 32, or that has only one dim,
// stays a float weight (as llama.cpp's converter keeps such tensors in F16/F32).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../graph/ir.hpp"

namespace scribe::q8 {

inline constexpr std::int64_t block = 32;
inline constexpr std::string_view blocks_dim = "q8_blocks", block_dim = "q8_block";

// The two parameters of a q8 weight: `name` holds q, scale_name(name) the scales.
inline constexpr std::string_view scale_suffix = ".scale";
inline std::string scale_name(const std::string& name) { return name + std::string(scale_suffix); }

// Where a weight's elements go when it is stored as q8.
struct layout {
    shape value;                    // [out..., in...]: the declared dims, in ones last
    std::vector<std::int64_t> perm;  // declared dim i is value dim perm[i]
    shape q, scale;                 // the two stored tensors' dims
    std::int64_t rows = 0, k = 0;   // value as a [rows][k] matrix
    bool transposed() const {
        for (std::size_t i = 0; i < perm.size(); ++i)
            if (perm[i] != static_cast<std::int64_t>(i)) return true;
        return false;
    }
};

// The q8 layout of a weight of declared dims `dims` whose dims named `in` are
// contracted, or nullopt when it stays a float weight: fewer than two dims, no
// in-dim or only in-dims, or k not a multiple of 32.
inline std::optional<layout> plan(const shape& dims, const std::vector<std::string>& in) {
    if (dims.size() < 2 || in.empty()) return std::nullopt;
    layout l;
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
    for (auto i : outs) l.q.push_back(dims[static_cast<std::size_t>(i)]);
    l.scale = l.q;
    l.scale.push_back({std::string(blocks_dim), l.k / block});
    l.q.push_back({std::string(blocks_dim), l.k / block});
    l.q.push_back({std::string(block_dim), block});
    return l;
}

// The weight, in dtype t and its declared dims, from the parameters q (s8) and
// scale (f16) of layout l.
inline node_id dequantize(graph& g, node_id q, node_id scale, const layout& l, dtype t) {
    const auto values = ir::convert(g, q, dtype::f32);
    std::vector<std::int64_t> axes(l.scale.size());
    for (std::size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<std::int64_t>(i);
    const auto scales = ir::broadcast(g, ir::convert(g, scale, dtype::f32), l.q, std::move(axes));
    const auto w = ir::reshape(g, ir::convert(g, ir::binary(g, op::mul, values, scales), t), l.value);
    return ir::transpose(g, w, l.perm);
}

}  // namespace scribe::q8
