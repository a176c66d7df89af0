// scribe/hlo/module.hpp — an HLO module as plain data: what lower() produces and
// what the text and proto printers read. It mirrors HloModuleProto, holding only
// the fields Scribe emits.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/dtype.hpp"
#include "../graph/graph.hpp"

namespace scribe::hlo {

struct shape {
    dtype type = dtype::f32;
    std::vector<std::int64_t> dims;
    bool is_tuple = false;
    std::vector<shape> elements;  // tuple elements

    static shape tuple(std::vector<shape> elements) {
        shape s;
        s.is_tuple = true;
        s.elements = std::move(elements);
        return s;
    }
};

struct gather_dimensions {
    std::vector<std::int64_t> offset_dims, collapsed_slice_dims, start_index_map, slice_sizes;
    std::int64_t index_vector_dim = 0;
};

struct scatter_dimensions {
    std::vector<std::int64_t> update_window_dims, inserted_window_dims, scatter_dims_to_operand_dims;
    std::int64_t index_vector_dim = 0;
};

struct instruction {
    std::int64_t id = 0;
    std::string name;
    std::string opcode;
    hlo::shape shape;
    std::vector<std::int64_t> operands;  // instruction ids

    std::int64_t parameter_number = -1;         // parameter
    std::vector<unsigned char> literal;         // constant: elements in shape.type
    bool has_dimensions = false;                // prints dimensions={...}
    std::vector<std::int64_t> dimensions;       // broadcast, transpose, reduce, concatenate, all-gather, iota
    std::vector<std::array<std::int64_t, 3>> slices;  // slice: start, limit, stride
    std::vector<std::int64_t> dynamic_slice_sizes;
    std::vector<std::array<std::int64_t, 2>> padding;  // pad: low, high
    bool is_dot = false;
    dot_dimensions dot;
    bool is_gather = false;
    gather_dimensions gather;
    bool is_scatter = false;
    scatter_dimensions scatter;
    std::string direction;                      // compare
    std::int64_t tuple_index = -1;              // get-tuple-element
    std::vector<std::int64_t> called;           // computation ids (to_apply)
    std::vector<std::vector<std::int64_t>> replica_groups;
};

struct computation {
    std::int64_t id = 0;
    std::string name;
    std::vector<instruction> instructions;  // operands before users
    std::int64_t root_id = 0;
    std::vector<shape> parameters;
    std::vector<std::string> parameter_names;
    shape result;

    const instruction& find(std::int64_t instruction_id) const {
        for (const auto& i : instructions)
            if (i.id == instruction_id) return i;
        throw error("hlo: no instruction " + std::to_string(instruction_id) + " in " + name);
    }
};

struct alias_entry {
    std::vector<std::int64_t> output_index;  // {} for a single (non-tuple) output
    std::int64_t parameter_number;
};

struct module {
    std::string name;
    std::vector<computation> computations;  // callees first; the entry is last
    std::vector<alias_entry> aliases;

    const computation& entry() const { return computations.back(); }
    const computation& find(std::int64_t computation_id) const {
        for (const auto& c : computations)
            if (c.id == computation_id) return c;
        throw error("hlo: no computation " + std::to_string(computation_id));
    }
};

}  // namespace scribe::hlo
