// scribe/parallel/weights.hpp — each rank's part of the weights, cut from the
// unsharded checkpoint, and the memory each rank needs.
//
// A weight split along dimension D over `degree` ranks gives rank r the indices
// [r * S, (r + 1) * S) of D, S = ceil(extent / degree); indices past the extent
// (the vocabulary's padding) are zeros. Where that part is contiguous in the
// checkpoint (D is the outermost dimension: the rows of an embedding, the input
// side of a row-parallel weight) the rank borrows it in place, mmapped; otherwise
// the rank copies its part only, never the whole weight.
#pragma once

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "../core/checked.hpp"
#include "../cpu/array.hpp"
#include "../ops/quantize.hpp"
#include "mesh.hpp"

namespace scribe::parallel {

// dims with `split` cut to one rank's extent.
inline shape shard_shape(shape dims, std::string_view split, std::int64_t degree) {
    if (split.empty()) return dims;
    for (auto& d : dims)
        if (d.name == split) {
            d.extent = (d.extent + degree - 1) / degree;
            return dims;
        }
    throw error("tensor parallel: a weight is split along `" + std::string(split) + "` but has no such dimension " +
                to_string(dims));
}

// Rank `rank`'s part of `full` (labelled with the dims the model reads it as).
inline cpu::array shard(const cpu::array& full, std::string_view split, std::int64_t degree, std::int64_t rank) {
    if (split.empty() || degree == 1) return full.view();
    const auto& dims = full.dims();
    std::size_t axis = dims.size();
    for (std::size_t k = 0; k < dims.size(); ++k)
        if (dims[k].name == split) axis = k;
    auto part_dims = shard_shape(dims, split, degree);  // throws when there is no such dim
    const auto extent = dims[axis].extent, each = part_dims[axis].extent;
    const auto begin = std::min(extent, rank * each), end = std::min(extent, (rank + 1) * each);
    std::int64_t outer = 1, inner = 1;
    for (std::size_t k = 0; k < axis; ++k) outer *= dims[k].extent;
    for (std::size_t k = axis + 1; k < dims.size(); ++k) inner *= dims[k].extent;
    const auto elem = static_cast<std::size_t>(info(full.type()).bytes);
    const auto row = static_cast<std::size_t>(inner) * elem;  // bytes of one index of the split dim
    if (outer == 1 && end - begin == each)                       // contiguous and whole: borrowed
        return cpu::array::borrow(full.type(), part_dims, full.data() + static_cast<std::size_t>(begin) * row,
                                  static_cast<std::size_t>(each) * row);
    cpu::array part(full.type(), part_dims);  // zeros: the padding stays zero
    for (std::int64_t o = 0; o < outer; ++o)
        if (end > begin)
            std::memcpy(part.mutable_data() + static_cast<std::size_t>(o * each) * row,
                        full.data() + (static_cast<std::size_t>(o * extent + begin)) * row,
                        static_cast<std::size_t>(end - begin) * row);
    return part;
}

// The whole weight, `extent` long along `split`, from its `degree` parts (each
// shaped `part`) back to back at `parts`, in rank order, as an all-gather leaves
// them: shard's inverse, the padding past `extent` dropped.
inline cpu::array unshard(dtype t, const shape& part, const unsigned char* parts, std::string_view split, std::int64_t degree,
                          std::int64_t extent) {
    std::size_t axis = part.size();
    for (std::size_t k = 0; k < part.size(); ++k)
        if (part[k].name == split) axis = k;
    if (axis == part.size())
        throw error("tensor parallel: a weight is split along `" + std::string(split) + "` but has no such dimension " + to_string(part));
    const auto each = part[axis].extent;
    if (extent > each * degree || extent <= each * (degree - 1))
        throw error("tensor parallel: " + std::to_string(degree) + " parts of " + std::to_string(each) + " along `" + std::string(split) +
                    "` do not make " + std::to_string(extent));
    auto dims = part;
    dims[axis].extent = extent;
    std::int64_t outer = 1, inner = 1;
    for (std::size_t k = 0; k < axis; ++k) outer *= part[k].extent;
    for (std::size_t k = axis + 1; k < part.size(); ++k) inner *= part[k].extent;
    const auto row = static_cast<std::size_t>(inner) * static_cast<std::size_t>(info(t).bytes);
    const auto part_bytes = static_cast<std::size_t>(outer * each) * row;
    auto whole = cpu::array::uninitialized(t, dims);
    for (std::int64_t r = 0; r < degree; ++r) {
        const auto begin = r * each, end = std::min(extent, (r + 1) * each);
        if (end <= begin) continue;
        for (std::int64_t o = 0; o < outer; ++o)
            std::memcpy(whole.mutable_data() + static_cast<std::size_t>(o * extent + begin) * row,
                        parts + static_cast<std::size_t>(r) * part_bytes + static_cast<std::size_t>(o * each) * row,
                        static_cast<std::size_t>(end - begin) * row);
    }
    return whole;
}

// The same, the split dimension given as a dimension object: shard(w, ffn, 2, r).
template <Dim D>
cpu::array shard(const cpu::array& full, const D&, std::int64_t degree, std::int64_t rank) {
    return shard(full, D::name(), degree, rank);
}

// What one rank holds: its weights and its KV cache, in bytes.
struct memory_plan {
    std::int64_t degree = 1;
    std::size_t weights = 0, kv_cache = 0;
    std::size_t total() const { return weights + kv_cache; }
};

// The per-rank bytes for weights listed as specs (name, dims, split, in) and the
// per-rank cache tensors, all in dtype t; with q8 (q4) weights, the matrices that
// quantize take 34 (18) bytes per 32 elements (ops/quantize.hpp).
template <class Spec>
memory_plan plan(const std::vector<Spec>& specs, const std::vector<shape>& caches, dtype t, std::int64_t degree,
                 weight_format format = weight_format::plain) {
    memory_plan p{.degree = degree};
    const auto bytes = static_cast<std::uint64_t>(info(t).bytes);
    std::uint64_t w = 0, kv = 0;
    for (const auto& s : specs) {
        const auto part = shard_shape(s.dims, s.split, degree);
        const auto n = static_cast<std::uint64_t>(element_count(part));
        const bool blocks = q8::plan(part, s.in, format).has_value();
        w = checked::add(w, blocks ? checked::mul(n / 32, static_cast<std::uint64_t>(q8::block_bytes(format)), "the bytes of weight " + s.name)
                                   : checked::mul(n, bytes, "the bytes of weight " + s.name),
                         "the bytes of the weights");
    }
    for (const auto& c : caches)
        kv = checked::add(kv, checked::mul(static_cast<std::uint64_t>(element_count(c)), bytes, "the bytes of a KV cache tensor"),
                          "the bytes of the KV cache");
    (void)checked::add(w, kv, "the bytes of the weights and the KV cache");
    p.weights = static_cast<std::size_t>(w);
    p.kv_cache = static_cast<std::size_t>(kv);
    return p;
}

}  // namespace scribe::parallel
