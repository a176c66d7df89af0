// scribe/io/tensor_file.hpp — what a checkpoint file gives the loader, whatever
// its format: named tensors (dtype, shape) and each one's row-major bytes, in
// place in the file's memory map wherever the file holds them that way.
//
// The formats (safetensors.hpp, pytorch.hpp) validate a file completely when they
// open it and then describe it here; nothing read through this interface can lie
// outside the file or disagree with its dtype and shape.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <sys/mman.h>

#include "../core/dtype.hpp"
#include "../core/error.hpp"
#include "file.hpp"

namespace scribe::io {

// A read-only memory map of a whole file.
class mapped_file {
public:
    // `what` says what the file is for, in errors ("the safetensors file").
    mapped_file(const std::filesystem::path& path, const std::string& what) : path_(path) {
        const regular_file f(path, what);
        size_ = static_cast<std::size_t>(f.size());
        if (size_ > 0) {
            void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, f.fd(), 0);
            if (p == MAP_FAILED) throw error(shown_path(path) + ": cannot map (" + std::strerror(errno) + ")");
            data_ = static_cast<const unsigned char*>(p);
            mapped_ = true;
        }
    }
    // A copy of bytes in memory, standing for a file called `name` (in-memory
    // parsing, e.g. by the fuzz tests).
    mapped_file(std::span<const unsigned char> bytes, const std::filesystem::path& name)
        : path_(name), owned_(bytes.begin(), bytes.end()), data_(owned_.data()), size_(owned_.size()) {}
    ~mapped_file() {
        if (mapped_) ::munmap(const_cast<unsigned char*>(data_), size_);
    }
    mapped_file(const mapped_file&) = delete;
    mapped_file& operator=(const mapped_file&) = delete;

    const unsigned char* data() const { return data_; }
    std::size_t size() const { return size_; }
    std::span<const unsigned char> bytes() const { return {data_, size_}; }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
    std::vector<unsigned char> owned_;  // the bytes, when not mapped
    const unsigned char* data_ = nullptr;
    std::size_t size_ = 0;
    bool mapped_ = false;
};

struct tensor_entry {
    std::string name;
    dtype type;
    std::vector<std::int64_t> shape;
    // Where the bytes are: in a safetensors file, offsets into its data section;
    // in a torch archive, offsets into the file (for a tensor gathered from a
    // strided view, the range it would take stored whole after its storage's
    // first byte). end - begin is always the tensor's byte count.
    std::uint64_t begin, end;
    std::int64_t elements() const {
        std::int64_t n = 1;
        for (auto e : shape) n *= e;
        return n;
    }
};

// The tensors of one validated checkpoint file.
class tensor_file {
public:
    virtual ~tensor_file() = default;

    const std::filesystem::path& path() const { return file_->path(); }
    const std::vector<tensor_entry>& tensors() const { return entries_; }
    // String metadata (safetensors' __metadata__; empty for other formats).
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    bool contains(const std::string& name) const { return index_.count(name) != 0; }

    const tensor_entry& entry(const std::string& name) const { return entries_[find(name)]; }
    // The tensor's row-major bytes: in place in the mapping, or (a torch tensor
    // stored as a strided view) a copy made when the file was opened.
    std::span<const unsigned char> bytes(const std::string& name) const { return views_[find(name)]; }
    // Keeps the mapping alive (for views handed out beyond this object's life).
    std::shared_ptr<const mapped_file> mapping() const { return file_; }

protected:
    explicit tensor_file(std::shared_ptr<mapped_file> file) : file_(std::move(file)) {}
    tensor_file(const tensor_file&) = default;
    tensor_file(tensor_file&&) = default;
    tensor_file& operator=(const tensor_file&) = default;
    tensor_file& operator=(tensor_file&&) = default;

    std::string where() const { return shown_path(file_->path()); }

    // Adds a validated tensor; its name must be new.
    void add(tensor_entry e, std::span<const unsigned char> bytes) {
        index_[e.name] = entries_.size();
        entries_.push_back(std::move(e));
        views_.push_back(bytes);
    }
    // Keeps `bytes` for as long as this file (and its copies) live; returns them.
    std::span<const unsigned char> keep(std::vector<unsigned char> bytes) {
        if (!copies_) copies_ = std::make_shared<std::vector<std::vector<unsigned char>>>();
        copies_->push_back(std::move(bytes));
        return copies_->back();
    }

    std::shared_ptr<mapped_file> file_;
    std::map<std::string, std::string> metadata_;

private:
    std::size_t find(const std::string& name) const {
        const auto it = index_.find(name);
        if (it == index_.end()) throw error(where() + ": no tensor `" + printable(name) + "`");
        return it->second;
    }

    std::vector<tensor_entry> entries_;
    std::vector<std::span<const unsigned char>> views_;  // each entry's bytes
    std::map<std::string, std::size_t> index_;
    std::shared_ptr<std::vector<std::vector<unsigned char>>> copies_;  // gathered tensors, shared by copies of this object
};

inline std::string shape_text(const std::vector<std::int64_t>& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

}  // namespace scribe::io
