// scribe/io/pytorch.hpp — read a pytorch_model.bin: the zip archive torch.save
// has written since torch 1.6, holding a state dict.
//
// The archive (zip.hpp) has one folder, <name>/, with data.pkl (the pickle of the
// state dict, read by detail::torch_pickle, which runs nothing), data/<key> (each
// storage's raw bytes, stored uncompressed), and byteorder ("little"; older
// archives have none and are little-endian). Each tensor is a view of a storage:
// an element offset, a size and a stride. Checked when the file is opened, each
// error naming the file and the tensor: data.pkl's CRC, every storage present
// with exactly its element count of bytes, every view inside its storage, shapes
// of at most 2^48 elements. A view stored contiguously is a view into the file's
// memory map, as a safetensors tensor is; any other (a transposed or strided
// view) is gathered into a row-major copy once. Tensors may share a storage (tied
// weights). The legacy format (torch < 1.6: a bare pickle stream) and TorchScript
// archives are refused with a message that says how to convert the file.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "../core/dtype.hpp"
#include "../core/error.hpp"
#include "detail/torch_pickle.hpp"
#include "file.hpp"
#include "tensor_file.hpp"
#include "zip.hpp"

namespace scribe::io {

class pytorch_file : public tensor_file {
public:
    // The largest data.pkl read: a state dict of 10^5 tensors takes some MiB.
    static constexpr std::uint64_t pickle_limit = 64ull << 20;

    explicit pytorch_file(const std::filesystem::path& path)
        : tensor_file(std::make_shared<mapped_file>(path, "the PyTorch checkpoint")) { parse(); }
    // The same from a copy of the file's bytes; `name` stands for the file in errors.
    pytorch_file(std::span<const unsigned char> bytes, const std::filesystem::path& name)
        : tensor_file(std::make_shared<mapped_file>(bytes, name)) { parse(); }

private:
    void parse() {
        const auto bytes = file_->bytes();
        if (bytes.size() >= 2 && bytes[0] == 0x80 && bytes[1] <= 5)
            throw error(where() + ": a pickle stream, torch.save's legacy format (torch < 1.6), which Scribe does not read: " +
                        "load it with torch and save it again (torch.save, or better safetensors' save_file)");
        const zip_archive zip(bytes, where());
        // The one folder: the prefix of its data.pkl.
        std::string folder;
        for (const auto& e : zip.entries()) {
            const auto slash = e.name.find('/');
            if (slash == std::string::npos || slash == 0) throw error(where() + ": entry `" + printable(e.name) + "` is outside the archive's folder");
            const auto top = e.name.substr(0, slash);
            if (folder.empty()) folder = top;
            else if (top != folder)
                throw error(where() + ": entries in two folders, `" + printable(folder) + "/` and `" + printable(top) +
                            "/` (torch.save writes one)");
        }
        const auto* pickle = zip.find(folder + "/data.pkl");
        if (!pickle) {
            if (zip.find(folder + "/constants.pkl") || zip.find(folder + "/code/"))
                throw error(where() + ": a TorchScript archive (torch.jit.save), not a state dict; save the model's state_dict() with torch.save");
            throw error(where() + ": no " + printable(folder) + "/data.pkl: a zip archive, but not one torch.save wrote");
        }
        if (pickle->size > pickle_limit)
            throw error(where() + ": data.pkl is " + std::to_string(pickle->size) + " bytes, more than the " +
                        std::to_string(pickle_limit) + " a state dict's pickle may have");
        if (!zip.crc_ok(*pickle)) throw error(where() + ": data.pkl does not match its CRC-32: the file is damaged");
        if (const auto* order = zip.find(folder + "/byteorder")) {
            const auto b = zip.bytes(*order);
            const std::string_view text(reinterpret_cast<const char*>(b.data()), b.size());
            if (text != "little")
                throw error(where() + ": byteorder is \"" + printable(text) + "\"; Scribe reads little-endian checkpoints only");
        }
        const auto p = zip.bytes(*pickle);
        const detail::torch_pickle state(std::string_view(reinterpret_cast<const char*>(p.data()), p.size()), where() + ": data.pkl");
        for (const auto& t : state.tensors()) add_tensor(zip, folder, t);
    }

    void add_tensor(const zip_archive& zip, const std::string& folder, const detail::torch_tensor& t) {
        const auto what = where() + ": tensor `" + printable(t.name) + "`";
        const auto* storage = zip.find(folder + "/data/" + t.storage);
        if (!storage)
            throw error(what + " is in storage `" + printable(t.storage) + "`, which the archive does not hold (no " + printable(folder) +
                        "/data/" + printable(t.storage) + ")");
        const auto element = static_cast<std::uint64_t>(info(t.type).bytes);
        if (static_cast<unsigned __int128>(t.storage_elements) * element != storage->size)
            throw error(what + ": its storage `" + printable(t.storage) + "` holds " + std::to_string(t.storage_elements) + " elements of " +
                        std::string(name(t.type)) + ", but the archive's entry has " + std::to_string(storage->size) + " bytes");
        // Elements (at most 2^48, along the non-zero extents too) and the furthest one the view reaches.
        std::uint64_t elements = 1, span = 1;
        unsigned __int128 last = static_cast<std::uint64_t>(t.offset);
        for (std::size_t d = 0; d < t.size.size(); ++d) {
            const auto x = static_cast<std::uint64_t>(t.size[d]);
            if (x && span > (1ull << 48) / x)
                throw error(what + " has an impossibly large shape (more than 2^48 elements along its non-zero extents)");
            elements *= x;
            span *= x ? x : 1;
            if (x) last += static_cast<unsigned __int128>(x - 1) * static_cast<std::uint64_t>(t.stride[d]);
        }
        tensor_entry e{t.name, t.type, t.size, 0, 0};
        const auto data = zip.bytes(*storage);
        const auto count = static_cast<std::size_t>(elements * element);
        if (elements == 0) {
            e.begin = e.end = storage->offset;
            add(std::move(e), data.subspan(0, 0));
            return;
        }
        if (last >= t.storage_elements)
            throw error(what + " (" + std::string(name(t.type)) + shape_text(t.size) + " at offset " + std::to_string(t.offset) +
                        ", strides " + shape_text(t.stride) + ") reaches past the end of its storage of " +
                        std::to_string(t.storage_elements) + " elements");
        // Row-major: each stride the product of the extents after it (a dim of extent 1 may say anything).
        bool contiguous = true;
        std::uint64_t expected = 1;
        for (std::size_t d = t.size.size(); d-- > 0;) {
            if (t.size[d] != 1 && static_cast<std::uint64_t>(t.stride[d]) != expected) contiguous = false;
            expected *= static_cast<std::uint64_t>(t.size[d]);
        }
        const auto start = static_cast<std::size_t>(static_cast<std::uint64_t>(t.offset) * element);
        if (contiguous) {
            e.begin = storage->offset + start;
            e.end = e.begin + count;
            add(std::move(e), data.subspan(start, count));
            return;
        }
        // A strided view: gathered, element by element, in row-major order. Views
        // may overlap (a stride of 0), so the copies are bounded: all of them
        // together at most the file's size.
        gathered_ += count;
        if (gathered_ > file_->size())
            throw error(what + " is a strided view (strides " + shape_text(t.stride) + ") of " + std::to_string(count) +
                        " bytes: copied out with the file's other strided views, that would be more bytes than the file has, " +
                        "which views of a checkpoint's own storages never need");
        std::vector<unsigned char> copy(count);
        std::vector<std::int64_t> index(t.size.size(), 0);
        for (std::size_t n = 0; n < elements; ++n) {
            std::uint64_t from = static_cast<std::uint64_t>(t.offset);
            for (std::size_t d = 0; d < index.size(); ++d) from += static_cast<std::uint64_t>(index[d]) * static_cast<std::uint64_t>(t.stride[d]);
            std::memcpy(copy.data() + n * element, data.data() + from * element, element);
            for (std::size_t d = index.size(); d-- > 0;) {
                if (++index[d] < t.size[d]) break;
                index[d] = 0;
            }
        }
        e.begin = storage->offset + start;
        e.end = e.begin + count;
        add(std::move(e), keep(std::move(copy)));
    }

    std::uint64_t gathered_ = 0;  // bytes copied out of strided views
};

}  // namespace scribe::io
