// scribe/graph/node.hpp — one plain node of the untyped graph IR.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/dtype.hpp"
#include "../core/error.hpp"
#include "op.hpp"

namespace scribe {

using node_id = std::int32_t;

// A dimension of a node's shape: its name and its extent (always known in the IR).
struct dim_extent {
    std::string name;
    std::int64_t extent;
    friend bool operator==(const dim_extent&, const dim_extent&) = default;
};
using shape = std::vector<dim_extent>;

// "[hidden=768, tokens=128]"
inline std::string to_string(const shape& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i) out += ", ";
        out += (s[i].name.empty() ? "" : s[i].name + "=") + std::to_string(s[i].extent);  // arrays from outside may be unnamed
    }
    return out + "]";
}

// The elements of a shape. Extents may come from outside (a config, a flag): a
// product past 2^56 elements (no buffer holds it; times 8 bytes it still fits 64
// bits) is an error naming the shape.
inline std::int64_t element_count(const shape& s) {
    std::int64_t n = 1;
    for (const auto& d : s)
        if (d.extent < 0 || __builtin_mul_overflow(n, d.extent, &n) || n > (std::int64_t{1} << 56))
            throw error("shape " + to_string(s) + " has too many elements (more than 2^56)");
    return n;
}

struct dot_dimensions {
    std::vector<std::int64_t> lhs_contracting, rhs_contracting, lhs_batch, rhs_batch;
};

// Attributes are plain fields; which ones an op reads is said next to each.
struct node {
    op kind = op::parameter;
    dtype type = dtype::f32;
    shape dims;                      // the result's shape (set by infer for most ops)
    std::vector<node_id> operands;

    // broadcast: result position of each operand dim; transpose: the permutation
    // (result i = operand axes[i]); reduce: the reduced dims; iota, concatenate, gather,
    // argmax, all_gather: {the one dim}
    std::vector<std::int64_t> axes;
    // slice: [starts, limits); pad: low and high padding; dynamic_slice: limits = sizes
    std::vector<std::int64_t> starts, limits;
    dot_dimensions dot;
    comparison direction = comparison::eq;   // compare
    reducer reduction = reducer::sum;        // reduce, all_reduce
    std::int64_t parameter_number = 0;       // parameter
    std::string label;                       // parameter: its name
    std::vector<unsigned char> literal;      // constant: elements, little-endian in `type`
    std::vector<std::vector<std::int64_t>> replica_groups;  // all_reduce, all_gather
};

}  // namespace scribe
