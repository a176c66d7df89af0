// scribe/io/zip.hpp — a strict reader of the zip archives torch.save writes:
// every entry stored (not compressed), so that an entry's bytes can be used in
// place in the file's memory map.
//
// The archive is read from its central directory (the end-of-central-directory
// record, and the ZIP64 records when the sizes or offsets do not fit in 32
// bits), and each entry's local header is checked against it. Refused, with a
// message naming the archive and the entry: a file that is not a zip archive, one
// split over several disks, an encrypted or compressed entry, an entry whose
// bytes or local header lie outside the file or overlap another's, a name given
// twice, empty or holding a NUL. CRC-32 is checked on request (crc_ok), so that
// the large tensor entries are not read when the archive is opened.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "file.hpp"

namespace scribe::io {

struct zip_entry {
    std::string name;
    std::uint64_t header;  // the local header's offset
    std::uint64_t offset;  // the data's offset
    std::uint64_t size;
    std::uint32_t crc;
};

// CRC-32 (ISO-HDLC, zip's), table-driven.
inline std::uint32_t crc32(std::span<const unsigned char> bytes) {
    static const auto table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    std::uint32_t c = 0xffffffffu;
    for (const auto b : bytes) c = table[(c ^ b) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

class zip_archive {
public:
    // `bytes` is the whole file (it must outlive this object); `where` names it.
    zip_archive(std::span<const unsigned char> bytes, std::string where) : bytes_(bytes), where_(std::move(where)) { read(); }

    const std::vector<zip_entry>& entries() const { return entries_; }
    const zip_entry* find(std::string_view name) const {
        const auto it = index_.find(std::string(name));
        return it == index_.end() ? nullptr : &entries_[it->second];
    }
    std::span<const unsigned char> bytes(const zip_entry& e) const { return bytes_.subspan(e.offset, e.size); }
    bool crc_ok(const zip_entry& e) const { return crc32(bytes(e)) == e.crc; }

private:
    static constexpr std::uint32_t local_signature = 0x04034b50, central_signature = 0x02014b50, end_signature = 0x06054b50,
                                   end64_signature = 0x06064b50, locator64_signature = 0x07064b50;

    [[noreturn]] void fail(const std::string& why) const { throw error(where_ + ": " + why); }

    std::uint64_t le(std::uint64_t at, int n) const {
        std::uint64_t v = 0;
        for (int i = n - 1; i >= 0; --i) v = (v << 8) | bytes_[at + static_cast<std::uint64_t>(i)];
        return v;
    }
    bool fits(std::uint64_t at, std::uint64_t n) const { return at <= bytes_.size() && n <= bytes_.size() - at; }

    void read() {
        const std::uint64_t size = bytes_.size();
        if (size < 22 || le(0, 4) != local_signature) fail("not a zip archive (it does not begin with a zip entry's \"PK\\x03\\x04\")");
        // The end record: 22 bytes and a comment of up to 65535 that ends the file.
        std::uint64_t end = size;
        for (std::uint64_t at = size - 22;; --at) {
            if (le(at, 4) == end_signature && at + 22 + le(at + 20, 2) == size) {
                end = at;
                break;
            }
            if (at == 0 || size - at > 22 + 65535) break;
        }
        if (end == size) fail("no end-of-central-directory record: the zip archive is truncated or damaged");
        std::uint64_t disk = le(end + 4, 2), cd_disk = le(end + 6, 2), here = le(end + 8, 2), count = le(end + 10, 2);
        std::uint64_t cd_size = le(end + 12, 4), cd_offset = le(end + 16, 4);
        std::uint64_t cd_limit = end;  // the central directory ends before this
        // ZIP64: the locator just before the end record (torch writes one always)
        // points to the record with the 64-bit fields.
        const bool has64 = end >= 20 && le(end - 20, 4) == locator64_signature;
        if (!has64 && (here == 0xffff || count == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff))
            fail("a ZIP64 archive without its ZIP64 end-of-central-directory locator");
        if (has64) {
            const auto record = le(end - 20 + 8, 8);
            if (le(end - 20 + 4, 4) != 0 || le(end - 20 + 16, 4) > 1) fail("split over several disks; Scribe reads single-file archives");
            if (!fits(record, 56) || record + 56 > end - 20 || le(record, 4) != end64_signature)
                fail("the ZIP64 end-of-central-directory record is missing or out of place");
            disk = le(record + 16, 4);
            cd_disk = le(record + 20, 4);
            here = le(record + 24, 8);
            count = le(record + 32, 8);
            cd_size = le(record + 40, 8);
            cd_offset = le(record + 48, 8);
            cd_limit = record;
        }
        if (disk != 0 || cd_disk != 0 || here != count) fail("split over several disks; Scribe reads single-file archives");
        if (cd_offset > cd_limit || cd_size != cd_limit - cd_offset)
            fail("the central directory (" + std::to_string(cd_size) + " bytes at " + std::to_string(cd_offset) +
                 ") does not end where the end record begins (" + std::to_string(cd_limit) + ")");
        if (count > cd_size / 46) fail("the end record claims " + std::to_string(count) + " entries, more than its central directory can hold");
        std::uint64_t at = cd_offset;
        for (std::uint64_t i = 0; i < count; ++i) at = central(at, i);
        if (at != cd_limit) fail("the central directory has " + std::to_string(cd_limit - at) + " bytes after its last entry");
        // Entries (local header and data) lie before the directory and do not overlap.
        std::vector<const zip_entry*> order;
        for (const auto& e : entries_) order.push_back(&e);
        std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->header < b->header; });
        std::uint64_t free_from = 0;
        for (const auto* e : order) {
            if (e->header < free_from) fail("entries `" + printable(e->name) + "` and another overlap");
            free_from = e->offset + e->size;
        }
        if (free_from > cd_offset) fail("an entry's data runs into the central directory");
    }

    // Reads central directory entry `i` at `at`; returns where the next begins.
    std::uint64_t central(std::uint64_t at, std::uint64_t i) {
        const auto which = "central directory entry " + std::to_string(i);
        if (!fits(at, 46) || le(at, 4) != central_signature) fail(which + " is missing or damaged");
        const auto flags = le(at + 8, 2), method = le(at + 10, 2);
        const auto crc = static_cast<std::uint32_t>(le(at + 16, 4));
        std::uint64_t packed = le(at + 20, 4), size = le(at + 24, 4);
        const auto name_length = le(at + 28, 2), extra_length = le(at + 30, 2), comment_length = le(at + 32, 2);
        std::uint64_t disk = le(at + 34, 2), header = le(at + 42, 4);
        const auto next = at + 46 + name_length + extra_length + comment_length;
        if (!fits(at, next - at)) fail(which + " runs past the end of the file");
        const std::string name(reinterpret_cast<const char*>(bytes_.data() + at + 46), static_cast<std::size_t>(name_length));
        const auto what = "entry `" + printable(name) + "`";
        if (name.empty() || name.find('\0') != std::string::npos) fail(which + " has an empty name or one holding a NUL");
        // ZIP64 extended information: the 64-bit values of the fields that say 0xffffffff (0xffff), in order.
        std::uint64_t x = at + 46 + name_length;
        const auto x_end = x + extra_length;
        while (x + 4 <= x_end) {
            const auto id = le(x, 2), n = le(x + 2, 2);
            if (x + 4 + n > x_end) fail(what + ": an extra field runs past its entry");
            if (id == 1) {
                std::uint64_t f = x + 4;
                auto take = [&](std::uint64_t& v, int bytes) {
                    if (f + static_cast<std::uint64_t>(bytes) > x + 4 + n) fail(what + ": its ZIP64 extra field is too short");
                    v = le(f, bytes);
                    f += static_cast<std::uint64_t>(bytes);
                };
                if (size == 0xffffffff) take(size, 8);
                if (packed == 0xffffffff) take(packed, 8);
                if (header == 0xffffffff) take(header, 8);
                if (disk == 0xffff) take(disk, 4);
            }
            x += 4 + n;
        }
        if (x != x_end) fail(what + ": its extra fields do not add up to their length");
        if (flags & 0x41) fail(what + " is encrypted");
        if (method != 0)
            fail(what + " is compressed (method " + std::to_string(method) +
                 "); torch.save stores entries uncompressed, and Scribe reads only those (re-save the checkpoint with torch.save, or convert it to safetensors)");
        if (packed != size) fail(what + ": stored, but its compressed size " + std::to_string(packed) + " is not its size " + std::to_string(size));
        if (disk != 0) fail(what + " is on another disk; Scribe reads single-file archives");
        // The local header: the same name, stored; the data follows its name and extra field.
        if (!fits(header, 30) || le(header, 4) != local_signature) fail(what + ": no local header at " + std::to_string(header));
        const auto local_name = le(header + 26, 2), local_extra = le(header + 28, 2);
        if (le(header + 8, 2) != 0) fail(what + ": its local header says compressed");
        if (local_name != name_length || !fits(header + 30, local_name) ||
            std::string_view(reinterpret_cast<const char*>(bytes_.data() + header + 30), static_cast<std::size_t>(local_name)) != name)
            fail(what + ": its local header names another entry");
        const auto offset = header + 30 + local_name + local_extra;
        if (!fits(offset, size)) fail(what + ": its " + std::to_string(size) + " bytes run past the end of the file");
        if (!index_.emplace(name, entries_.size()).second) fail(what + " is in the archive twice");
        entries_.push_back({name, header, offset, size, crc});
        return next;
    }

    std::span<const unsigned char> bytes_;
    std::string where_;
    std::vector<zip_entry> entries_;
    std::map<std::string, std::size_t> index_;
};

}  // namespace scribe::io
