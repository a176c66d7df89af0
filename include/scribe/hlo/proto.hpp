// scribe/hlo/proto.hpp — an HLO module as a binary HloModuleProto.
//
// Field numbers follow XLA's hlo.proto and xla_data.proto; no .proto file is
// vendored. Every array shape carries its default layout, literals included.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "module.hpp"
#include "proto_writer.hpp"

namespace scribe::hlo {

namespace detail {

inline proto_writer shape_proto(const shape& s) {
    proto_writer w;
    if (s.is_tuple) {
        w.int_field(2, 13);  // element_type = TUPLE
        for (const auto& e : s.elements) w.message_field(4, shape_proto(e));
        return w;
    }
    w.int_field(2, info(s.type).xla_type);
    w.packed_ints(3, s.dims);
    proto_writer layout;  // LayoutProto.minor_to_major = 1
    std::vector<std::int64_t> minor_to_major;
    for (auto k = static_cast<std::int64_t>(s.dims.size()) - 1; k >= 0; --k) minor_to_major.push_back(k);
    layout.packed_ints(1, minor_to_major);
    w.message_field(5, layout);
    return w;
}

inline proto_writer literal_proto(const shape& s, const std::vector<unsigned char>& bytes) {
    proto_writer w;
    w.message_field(1, shape_proto(s));
    const auto count = bytes.size() / static_cast<std::size_t>(info(s.type).bytes);
    auto values = [&]<class T>(T) {
        std::vector<T> v(count);
        std::memcpy(v.data(), bytes.data(), bytes.size());
        return v;
    };
    auto as_int64 = [&]<class T>(T) {
        std::vector<std::int64_t> out;
        for (auto x : values(T{})) out.push_back(static_cast<std::int64_t>(x));
        return out;
    };
    const std::string raw(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    switch (s.type) {
        case dtype::pred: w.packed_ints(2, as_int64(std::uint8_t{})); break;
        case dtype::s8: w.bytes_field(15, raw); break;
        case dtype::u8: w.bytes_field(3, raw); break;
        case dtype::s32: w.packed_ints(4, as_int64(std::int32_t{})); break;
        case dtype::s64: w.packed_ints(5, as_int64(std::int64_t{})); break;
        case dtype::u32: w.packed_ints(6, as_int64(std::uint32_t{})); break;
        case dtype::f16: w.bytes_field(11, raw); break;
        case dtype::bf16: w.bytes_field(13, raw); break;
        case dtype::f32: w.packed_floats(8, values(float{})); break;
        case dtype::f64: w.packed_doubles(9, values(double{})); break;
    }
    return w;
}

inline proto_writer instruction_proto(const instruction& i) {
    proto_writer w;
    w.bytes_field(1, i.name);
    w.bytes_field(2, i.opcode);
    w.message_field(3, shape_proto(i.shape));
    if (i.opcode == "constant") w.message_field(8, literal_proto(i.shape, i.literal));
    if (i.parameter_number >= 0) w.int_field(9, i.parameter_number);
    if (i.tuple_index >= 0) w.int_field(13, i.tuple_index);
    w.packed_ints(14, i.dimensions);
    for (const auto& s : i.slices) {
        proto_writer sd;
        sd.int_field(1, s[0]);
        sd.int_field(2, s[1]);
        sd.int_field(3, s[2]);
        w.message_field(17, sd);
    }
    w.packed_ints(20, i.dynamic_slice_sizes);
    if (!i.padding.empty()) {
        proto_writer pc;  // PaddingConfig.dimensions = 1
        for (const auto& p : i.padding) {
            proto_writer d;
            d.int_field(1, p[0]);
            d.int_field(2, p[1]);
            pc.message_field(1, d);
        }
        w.message_field(21, pc);
    }
    if (i.is_dot) {  // required on every dot, even when empty
        proto_writer d;
        d.packed_ints(1, i.dot.lhs_contracting);
        d.packed_ints(2, i.dot.rhs_contracting);
        d.packed_ints(3, i.dot.lhs_batch);
        d.packed_ints(4, i.dot.rhs_batch);
        w.message_field(30, d);
    }
    if (i.is_gather) {
        proto_writer d;
        d.packed_ints(1, i.gather.offset_dims);
        d.packed_ints(2, i.gather.collapsed_slice_dims);
        d.packed_ints(3, i.gather.start_index_map);
        d.int_field(4, i.gather.index_vector_dim);
        w.message_field(33, d);
        w.packed_ints(34, i.gather.slice_sizes);
    }
    if (i.is_scatter) {
        // HloInstructionProto.scatter_dimension_numbers = 48 (xla/service/hlo.proto);
        // ScatterDimensionNumbers (xla/xla_data.proto): update_window_dims = 1,
        // inserted_window_dims = 2, scatter_dims_to_operand_dims = 3, index_vector_dim = 4.
        proto_writer d;
        d.packed_ints(1, i.scatter.update_window_dims);
        d.packed_ints(2, i.scatter.inserted_window_dims);
        d.packed_ints(3, i.scatter.scatter_dims_to_operand_dims);
        d.int_field(4, i.scatter.index_vector_dim);
        w.message_field(48, d);
    }
    w.int_field(35, i.id);
    w.packed_ints(36, i.operands);
    w.packed_ints(38, i.called);
    for (const auto& g : i.replica_groups) {
        proto_writer rg;
        rg.packed_ints(1, g);
        w.message_field(49, rg);
    }
    if (!i.direction.empty()) w.bytes_field(63, i.direction);
    return w;
}

inline proto_writer program_shape_proto(const computation& c) {
    proto_writer w;
    for (const auto& p : c.parameters) w.message_field(1, shape_proto(p));
    w.message_field(2, shape_proto(c.result));
    for (const auto& n : c.parameter_names) w.bytes_field(3, n);
    return w;
}

}  // namespace detail

// The serialized HloModuleProto (bytes, not text).
inline std::string to_proto(const module& m) {
    using namespace detail;
    proto_writer w;
    w.bytes_field(1, m.name);
    w.bytes_field(2, m.entry().name);
    for (const auto& c : m.computations) {
        proto_writer cw;
        cw.bytes_field(1, c.name);
        for (const auto& i : c.instructions) cw.message_field(2, instruction_proto(i));
        cw.message_field(4, program_shape_proto(c));
        cw.int_field(5, c.id);
        cw.int_field(6, c.root_id);
        w.message_field(3, cw);
    }
    w.message_field(4, program_shape_proto(m.entry()));
    w.int_field(5, 1);
    w.int_field(6, m.entry().id);
    if (!m.aliases.empty()) {
        proto_writer io;
        for (const auto& a : m.aliases) {
            proto_writer e;
            e.packed_ints(1, a.output_index);
            e.int_field(2, a.parameter_number);
            e.int_field(4, 1);  // MAY_ALIAS
            io.message_field(1, e);
        }
        w.message_field(8, io);
    }
    return w.bytes();
}

}  // namespace scribe::hlo
