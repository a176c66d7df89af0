// scribe/hlo/proto_writer.hpp — the protobuf wire format, written directly.
//
// Enough of it for HloModuleProto: varints, 64-bit and 32-bit scalars, strings and
// bytes, nested messages and packed repeated fields. Messages are built inside out:
// a nested message is its own writer whose bytes are appended with a length.
#pragma once

#include <bit>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace scribe::hlo {

class proto_writer {
public:
    const std::string& bytes() const { return out_; }

    void varint_field(int field, std::uint64_t v) {
        tag(field, 0);
        varint(v);
    }
    void int_field(int field, std::int64_t v) { varint_field(field, static_cast<std::uint64_t>(v)); }
    void bool_field(int field, bool v) { varint_field(field, v ? 1 : 0); }
    void bytes_field(int field, std::string_view s) {
        tag(field, 2);
        varint(s.size());
        out_.append(s);
    }
    void message_field(int field, const proto_writer& m) { bytes_field(field, m.bytes()); }

    // Packed repeated fields (proto3's default encoding for scalars).
    void packed_ints(int field, std::span<const std::int64_t> v) {
        if (v.empty()) return;
        proto_writer body;
        for (auto x : v) body.varint(static_cast<std::uint64_t>(x));
        bytes_field(field, body.bytes());
    }
    void packed_floats(int field, std::span<const float> v) {
        if (v.empty()) return;
        proto_writer body;
        for (auto x : v) body.fixed32(std::bit_cast<std::uint32_t>(x));
        bytes_field(field, body.bytes());
    }
    void packed_doubles(int field, std::span<const double> v) {
        if (v.empty()) return;
        proto_writer body;
        for (auto x : v) body.fixed64(std::bit_cast<std::uint64_t>(x));
        bytes_field(field, body.bytes());
    }

private:
    void tag(int field, int wire_type) { varint((static_cast<std::uint64_t>(field) << 3) | static_cast<unsigned>(wire_type)); }
    void varint(std::uint64_t v) {
        while (v >= 0x80) {
            out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
            v >>= 7;
        }
        out_.push_back(static_cast<char>(v));
    }
    void fixed32(std::uint32_t v) {
        for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
    void fixed64(std::uint64_t v) {
        for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }

    std::string out_;
};

}  // namespace scribe::hlo
