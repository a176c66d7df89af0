// scribe/hlo/text.hpp — an HLO module as HLO text, the form XLA's parser reads.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

#include "module.hpp"

namespace scribe::hlo {

namespace detail {

inline std::string join(const std::vector<std::int64_t>& v, const char* sep = ",") {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += sep;
        out += std::to_string(v[i]);
    }
    return out;
}

inline std::string braces(const std::vector<std::int64_t>& v) { return "{" + join(v) + "}"; }

inline std::string to_text(const shape& s) {
    if (s.is_tuple) {
        std::string out = "(";
        for (std::size_t i = 0; i < s.elements.size(); ++i) out += (i ? ", " : "") + to_text(s.elements[i]);
        return out + ")";
    }
    std::string out = std::string(name(s.type)) + "[" + join(s.dims) + "]";
    if (!s.dims.empty()) {
        std::vector<std::int64_t> layout;
        for (auto k = static_cast<std::int64_t>(s.dims.size()) - 1; k >= 0; --k) layout.push_back(k);
        out += braces(layout);
    }
    return out;
}

inline std::string literal_element(dtype t, const unsigned char* p) {
    if (t == dtype::pred) return load_as_int(t, p) ? "true" : "false";
    if (!is_float(t)) return std::to_string(load_as_int(t, p));
    const double v = load_as_double(t, p);
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[40];
    std::snprintf(buf, sizeof buf, t == dtype::f64 ? "%.17g" : "%.9g", v);
    return buf;
}

// Nested braces, one level per dimension: {{1, 2}, {3, 4}}.
inline std::string literal_text(const shape& s, const std::vector<unsigned char>& bytes) {
    const auto size = static_cast<std::size_t>(info(s.type).bytes);
    if (s.dims.empty()) return literal_element(s.type, bytes.data());
    std::string out;
    std::size_t index = 0;
    auto rec = [&](auto&& self, std::size_t axis) -> void {
        out += "{";
        for (std::int64_t k = 0; k < s.dims[axis]; ++k) {
            if (k) out += ", ";
            if (axis + 1 == s.dims.size())
                out += literal_element(s.type, bytes.data() + size * index++);
            else
                self(self, axis + 1);
        }
        out += "}";
    };
    rec(rec, 0);
    return out;
}

inline std::string instruction_text(const module& m, const computation& c, const instruction& i) {
    std::string out = "  ";
    if (i.id == c.root_id) out += "ROOT ";
    out += i.name + " = " + to_text(i.shape) + " " + i.opcode + "(";
    if (i.opcode == "parameter") out += std::to_string(i.parameter_number);
    if (i.opcode == "constant") out += literal_text(i.shape, i.literal);
    for (std::size_t k = 0; k < i.operands.size(); ++k) out += (k ? ", " : "") + c.find(i.operands[k]).name;
    out += ")";
    if (i.has_dimensions) {
        if (i.opcode == "iota")
            out += ", iota_dimension=" + std::to_string(i.dimensions.at(0));
        else
            out += ", dimensions=" + braces(i.dimensions);
    }
    if (!i.slices.empty()) {
        out += ", slice={";
        for (std::size_t k = 0; k < i.slices.size(); ++k)
            out += (k ? ", [" : "[") + std::to_string(i.slices[k][0]) + ":" + std::to_string(i.slices[k][1]) + ":" +
                   std::to_string(i.slices[k][2]) + "]";
        out += "}";
    }
    if (!i.dynamic_slice_sizes.empty()) out += ", dynamic_slice_sizes=" + braces(i.dynamic_slice_sizes);
    if (!i.padding.empty()) {
        out += ", padding=";
        for (std::size_t k = 0; k < i.padding.size(); ++k)
            out += (k ? "x" : "") + std::to_string(i.padding[k][0]) + "_" + std::to_string(i.padding[k][1]);
    }
    if (i.is_dot) {
        if (!i.dot.lhs_batch.empty()) out += ", lhs_batch_dims=" + braces(i.dot.lhs_batch);
        if (!i.dot.lhs_contracting.empty()) out += ", lhs_contracting_dims=" + braces(i.dot.lhs_contracting);
        if (!i.dot.rhs_batch.empty()) out += ", rhs_batch_dims=" + braces(i.dot.rhs_batch);
        if (!i.dot.rhs_contracting.empty()) out += ", rhs_contracting_dims=" + braces(i.dot.rhs_contracting);
    }
    if (i.is_gather) {
        out += ", offset_dims=" + braces(i.gather.offset_dims) +
               ", collapsed_slice_dims=" + braces(i.gather.collapsed_slice_dims) +
               ", start_index_map=" + braces(i.gather.start_index_map) +
               ", index_vector_dim=" + std::to_string(i.gather.index_vector_dim) +
               ", slice_sizes=" + braces(i.gather.slice_sizes);
    }
    if (i.is_scatter) {
        out += ", update_window_dims=" + braces(i.scatter.update_window_dims) +
               ", inserted_window_dims=" + braces(i.scatter.inserted_window_dims) +
               ", scatter_dims_to_operand_dims=" + braces(i.scatter.scatter_dims_to_operand_dims) +
               ", index_vector_dim=" + std::to_string(i.scatter.index_vector_dim);
    }
    if (!i.direction.empty()) out += ", direction=" + i.direction;
    if (i.tuple_index >= 0) out += ", index=" + std::to_string(i.tuple_index);
    if (!i.replica_groups.empty()) {
        out += ", replica_groups={";
        for (std::size_t k = 0; k < i.replica_groups.size(); ++k) out += (k ? "," : "") + braces(i.replica_groups[k]);
        out += "}";
    }
    for (auto id : i.called) out += ", to_apply=" + m.find(id).name;
    return out + "\n";
}

}  // namespace detail

inline std::string to_text(const module& m) {
    using namespace detail;
    std::string out = "HloModule " + m.name;
    if (!m.aliases.empty()) {
        out += ", input_output_alias={ ";
        for (std::size_t k = 0; k < m.aliases.size(); ++k) {
            const auto& a = m.aliases[k];
            out += (k ? ", " : "") + braces(a.output_index) + ": (" + std::to_string(a.parameter_number) +
                   ", {}, may-alias)";
        }
        out += " }";
    }
    const auto& e = m.entry();
    out += ", entry_computation_layout={(";
    for (std::size_t k = 0; k < e.parameters.size(); ++k) out += (k ? ", " : "") + to_text(e.parameters[k]);
    out += ")->" + to_text(e.result) + "}\n";
    for (const auto& c : m.computations) {
        out += "\n";
        if (&c == &e) out += "ENTRY ";
        out += c.name + " {\n";
        for (const auto& i : c.instructions) out += instruction_text(m, c, i);
        out += "}\n";
    }
    return out;
}

}  // namespace scribe::hlo
