// scribe/io/safetensors.hpp — read (mmapped) and write safetensors files.
//
// The format: an 8-byte little-endian header length N, N bytes of JSON mapping
// each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// into the data that follows the header) plus an optional "__metadata__" object
// of strings, then the data. Every field is validated when a file is opened: the
// header fits the file and is a JSON object, dtypes are known, shapes are
// non-negative, each tensor's byte range lies in the data and matches its shape,
// ranges neither overlap nor leave holes. Errors name the file and the tensor.
// Tensors are never copied: bytes() is a view into the mapping, which lives as
// long as the safetensors object. A safetensors object can also be made from bytes
// in memory (copied, and named for messages), as the fuzz tests do.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/dtype.hpp"
#include "../core/error.hpp"
#include "file.hpp"
#include "json.hpp"
#include "tensor_file.hpp"

namespace scribe::io {

// The safetensors dtype names Scribe has a dtype for.
inline dtype safetensors_dtype(const std::string& s, const std::string& where) {
    static const std::map<std::string, dtype> known = {
        {"BOOL", dtype::pred}, {"I8", dtype::s8},   {"U8", dtype::u8},     {"I32", dtype::s32}, {"I64", dtype::s64},
        {"U32", dtype::u32},   {"F16", dtype::f16}, {"BF16", dtype::bf16}, {"F32", dtype::f32}, {"F64", dtype::f64}};
    const auto it = known.find(s);
    if (it == known.end())
        throw error(where + " has dtype \"" + printable(s) + "\", which Scribe does not read (known: BOOL I8 U8 I32 I64 U32 F16 BF16 F32 F64)");
    return it->second;
}
inline std::string safetensors_name(dtype t) {
    switch (t) {
        case dtype::pred: return "BOOL";
        case dtype::s8: return "I8";
        case dtype::u8: return "U8";
        case dtype::s32: return "I32";
        case dtype::s64: return "I64";
        case dtype::u32: return "U32";
        case dtype::f16: return "F16";
        case dtype::bf16: return "BF16";
        case dtype::f32: return "F32";
        case dtype::f64: return "F64";
    }
    return "?";
}

// A safetensors file, validated whole when opened; its tensors are views into
// the mapping (tensor_file).
class safetensors : public tensor_file {
public:
    // The largest header read (the reference implementation's limit too).
    static constexpr std::uint64_t header_limit = 100ull << 20;

    explicit safetensors(const std::filesystem::path& path)
        : tensor_file(std::make_shared<mapped_file>(path, "the safetensors file")) { parse(); }
    // The same from a copy of the file's bytes; `name` stands for the file in errors.
    safetensors(std::span<const unsigned char> bytes, const std::filesystem::path& name)
        : tensor_file(std::make_shared<mapped_file>(bytes, name)) { parse(); }

private:
    void parse() {
        const auto size = file_->size();
        if (size < 8) throw error(where() + ": " + std::to_string(size) + " bytes is too short for a safetensors header (8 bytes of length first)");
        std::uint64_t n = 0;
        for (int i = 7; i >= 0; --i) n = (n << 8) | file_->data()[i];
        // The length is not echoed: the file may be anything (a symlink to a file
        // outside the model folder), and its bytes do not belong in a message.
        if (n > size - 8)
            throw error(where() + ": the header length (the first 8 bytes) runs past the end of the file (" +
                        std::to_string(size) + " bytes); the file is truncated or not safetensors");
        if (n > header_limit)
            throw error(where() + ": the header length (the first 8 bytes) is more than " + std::to_string(header_limit) +
                        " bytes; the file is not safetensors");
        const auto* header = reinterpret_cast<const char*>(file_->data() + 8);
        const auto j = parse_json(std::string_view(header, static_cast<std::size_t>(n)), where() + " (header)");
        if (!j.is_object()) throw error(where() + ": the header is not a JSON object");
        const auto* data = file_->data() + 8 + n;
        const std::uint64_t data_size = size - 8 - n;
        std::vector<tensor_entry> entries;
        for (auto it = j.begin(); it != j.end(); ++it) {
            const auto& key = it.key();
            const auto& v = it.value();
            if (key == "__metadata__") {
                if (!v.is_object()) throw error(where() + ": __metadata__ is not an object");
                for (auto m = v.begin(); m != v.end(); ++m) {
                    if (!m.value().is_string()) throw error(where() + ": __metadata__ `" + printable(m.key()) + "` is not a string");
                    metadata_[m.key()] = m.value().get<std::string>();
                }
                continue;
            }
            const auto what = where() + ": tensor `" + printable(key) + "`";
            if (!v.is_object()) throw error(what + " is not an object");
            for (auto f = v.begin(); f != v.end(); ++f)
                if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
                    throw error(what + " has an unknown field `" + printable(f.key()) + "`");
            if (!v.contains("dtype") || !v["dtype"].is_string()) throw error(what + " has no dtype string");
            if (!v.contains("shape") || !v["shape"].is_array()) throw error(what + " has no shape array");
            if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
                throw error(what + " has no data_offsets pair");
            tensor_entry e{key, safetensors_dtype(v["dtype"].get<std::string>(), what), {}, 0, 0};
            // The product of the extents, and that of the non-zero ones (an empty
            // tensor's other extents still enter strides and loops), both at most 2^48.
            std::uint64_t elements = 1, span = 1;
            for (const auto& d : v["shape"]) {
                if (!d.is_number_unsigned()) throw error(what + " has a shape entry that is not a non-negative integer");
                const auto x = d.get<std::uint64_t>();
                if (x > (1ull << 48) || (x && span > (1ull << 48) / x))
                    throw error(what + " has an impossibly large shape (more than 2^48 elements along its non-zero extents)");
                elements *= x;
                span *= x ? x : 1;
                e.shape.push_back(static_cast<std::int64_t>(x));
            }
            for (const auto& o : v["data_offsets"])
                if (!o.is_number_unsigned()) throw error(what + " has a data offset that is not a non-negative integer");
            e.begin = v["data_offsets"][0].get<std::uint64_t>();
            e.end = v["data_offsets"][1].get<std::uint64_t>();
            if (e.begin > e.end)
                throw error(what + " has data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                            ") that end before they begin");
            if (e.end > data_size)
                throw error(what + " has bytes [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                            ") outside the data section of " + std::to_string(data_size) + " bytes");
            const auto need = elements * static_cast<std::uint64_t>(info(e.type).bytes);
            if (e.end - e.begin != need)
                throw error(what + " is " + std::string(name(e.type)) + shape_text(e.shape) + ", " + std::to_string(need) +
                            " bytes, but its data_offsets span " + std::to_string(e.end - e.begin));
            entries.push_back(std::move(e));
        }
        // The data is covered exactly: no overlaps, no holes.
        std::vector<const tensor_entry*> by_offset;
        for (const auto& e : entries) by_offset.push_back(&e);
        std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->begin < b->begin || (a->begin == b->begin && a->end < b->end); });
        std::uint64_t at = 0;
        const tensor_entry* previous = nullptr;
        for (const auto* e : by_offset) {
            if (e->begin == e->end) continue;  // an empty tensor occupies nothing
            if (e->begin < at)
                throw error(where() + ": tensors `" + printable(previous->name) + "` and `" + printable(e->name) + "` overlap (bytes from " +
                            std::to_string(e->begin) + " to " + std::to_string(at) + ")");
            if (e->begin > at)
                throw error(where() + ": bytes [" + std::to_string(at) + ", " + std::to_string(e->begin) + ") of the data belong to no tensor");
            at = e->end;
            previous = e;
        }
        if (at != data_size)
            throw error(where() + ": bytes [" + std::to_string(at) + ", " + std::to_string(data_size) + ") at the end of the data belong to no tensor");
        for (auto& e : entries) {
            const std::span<const unsigned char> bytes(data + e.begin, static_cast<std::size_t>(e.end - e.begin));
            add(std::move(e), bytes);
        }
    }
};

// A tensor to write: its name, dtype, shape and row-major bytes.
struct tensor_to_write {
    std::string name;
    dtype type;
    std::vector<std::int64_t> shape;
    std::span<const unsigned char> bytes;
};

// Writes a safetensors file (tensors in the order given; header padded with
// spaces so the data starts at a multiple of `align` bytes, 8 as the reference
// writer does, or more where the tensors' sizes keep each start aligned),
// atomically.
inline void write_safetensors(const std::filesystem::path& path, const std::vector<tensor_to_write>& tensors,
                              const std::map<std::string, std::string>& metadata = {}, std::size_t align = 8) {
    nlohmann::ordered_json h;
    if (!metadata.empty()) h["__metadata__"] = metadata;
    std::uint64_t at = 0;
    for (const auto& t : tensors) {
        std::int64_t n = 1;
        for (auto e : t.shape) n *= e;
        if (static_cast<std::uint64_t>(n) * info(t.type).bytes != t.bytes.size())
            throw error(path.string() + ": tensor `" + t.name + "` has " + std::to_string(t.bytes.size()) +
                        " bytes for " + std::to_string(n) + " elements of " + std::string(name(t.type)));
        h[t.name] = {{"dtype", safetensors_name(t.type)}, {"shape", t.shape}, {"data_offsets", {at, at + t.bytes.size()}}};
        at += t.bytes.size();
    }
    auto text = h.dump();
    if (align < 8 || align % 8 != 0) throw error(path.string() + ": the data's alignment must be a multiple of 8, not " + std::to_string(align));
    text.append((align - (8 + text.size()) % align) % align, ' ');
    atomic_file out(path);
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(text.size()) >> (8 * i));
    out.write(len, 8);
    out.write(text);
    for (const auto& t : tensors) out.write(t.bytes.data(), t.bytes.size());
    out.commit();
}

}  // namespace scribe::io
