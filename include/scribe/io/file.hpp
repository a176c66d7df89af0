// scribe/io/file.hpp — opening a file that came with a model folder, whose every
// byte may be hostile. Only regular files are opened (a symlink to one is fine:
// the Hugging Face cache is made of them); a FIFO, a device or a socket is refused
// without blocking (O_NONBLOCK), a directory is named as one, and a text file is
// read only up to a size limit that the caller chooses for its kind of file.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/error.hpp"

namespace scribe::io {

// A string from a file as it may appear in a message: printable ASCII kept,
// other bytes as \xNN, cut at `limit` bytes.
inline std::string printable(std::string_view s, std::size_t limit = 64) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') out += static_cast<char>(c);
        else if (c == '\\') out += "\\\\";
        else out += std::string("\\x") + hex[c >> 4] + hex[c & 15];
    }
    if (s.size() > limit) out += "...";
    return out;
}

// A path as a message shows it (a file name may come from a file: an index).
inline std::string shown_path(const std::filesystem::path& p) { return printable(p.string(), 512); }


// An open regular file: its descriptor (closed with the object) and its size.
class regular_file {
public:
    // `what` says what the file is for, in errors ("the model's config").
    regular_file(const std::filesystem::path& path, const std::string& what) : path_(path) {
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd_ < 0) {
            const int e = errno;
            if (e == ENOENT) throw error(shown_path(path) + ": cannot open " + what + ": no such file");
            throw error(shown_path(path) + ": cannot open " + what + " (" + std::strerror(e) + ")");
        }
        struct stat st{};
        if (::fstat(fd_, &st) != 0) {
            const int e = errno;
            ::close(fd_);
            throw error(shown_path(path) + ": cannot stat " + what + " (" + std::strerror(e) + ")");
        }
        if (!S_ISREG(st.st_mode)) {
            ::close(fd_);
            throw error(shown_path(path) + ": " + what + " is " + kind(st.st_mode) + ", not a regular file");
        }
        size_ = static_cast<std::uint64_t>(st.st_size);
    }
    ~regular_file() {
        if (fd_ >= 0) ::close(fd_);
    }
    regular_file(const regular_file&) = delete;
    regular_file& operator=(const regular_file&) = delete;

    int fd() const { return fd_; }
    std::uint64_t size() const { return size_; }
    const std::filesystem::path& path() const { return path_; }

    // The whole file, when it has at most `limit` bytes.
    std::string read_all(std::uint64_t limit, const std::string& what) const {
        if (size_ > limit)
            throw error(shown_path(path_) + ": " + what + " is " + std::to_string(size_) + " bytes, more than the " +
                        std::to_string(limit) + " such a file may have");
        std::string out(static_cast<std::size_t>(size_), '\0');
        std::size_t at = 0;
        while (at < out.size()) {
            const auto n = ::pread(fd_, out.data() + at, out.size() - at, static_cast<off_t>(at));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw error(shown_path(path_) + ": cannot read " + what + " (" + std::strerror(errno) + ")");
            if (n == 0) break;  // shrank while read
            at += static_cast<std::size_t>(n);
        }
        out.resize(at);
        return out;
    }

private:
    static std::string kind(mode_t m) {
        if (S_ISDIR(m)) return "a directory";
        if (S_ISFIFO(m)) return "a FIFO";
        if (S_ISCHR(m)) return "a character device";
        if (S_ISBLK(m)) return "a block device";
        if (S_ISSOCK(m)) return "a socket";
        return "not a plain file";
    }

    std::filesystem::path path_;
    int fd_ = -1;
    std::uint64_t size_ = 0;
};

// Size limits for the text files of a model folder. The largest real ones:
// config.json a few KiB, tokenizer.json about 35 MiB (Gemma), an index some MiB.
inline constexpr std::uint64_t config_file_limit = 16ull << 20;
inline constexpr std::uint64_t tokenizer_file_limit = 512ull << 20;

// A regular file's whole text, at most `limit` bytes.
inline std::string read_text(const std::filesystem::path& path, std::uint64_t limit, const std::string& what) {
    return regular_file(path, what).read_all(limit, what);
}

// A file written whole or not at all: the bytes go to a temporary file beside
// the target (<name>.tmp-<pid>), and commit() flushes it to the disk and renames
// it over the target, so a reader (or a run killed half-way) sees the old file or
// the new one, never a part. Destroyed uncommitted, it removes the temporary and
// leaves the target as it was.
class atomic_file {
public:
    explicit atomic_file(std::filesystem::path target)
        : target_(std::move(target)), temp_(target_.string() + ".tmp-" + std::to_string(::getpid())) {
        fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd_ < 0) throw error(shown_path(target_) + ": cannot write (" + std::strerror(errno) + ")");
    }
    ~atomic_file() {
        if (fd_ >= 0) ::close(fd_);
        if (!committed_) ::unlink(temp_.c_str());
    }
    atomic_file(const atomic_file&) = delete;
    atomic_file& operator=(const atomic_file&) = delete;

    void write(const void* data, std::size_t n) {
        const auto* p = static_cast<const char*>(data);
        while (n > 0) {
            const auto w = ::write(fd_, p, n);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) throw error(shown_path(target_) + ": write failed (" + std::strerror(errno) + ")");
            p += w;
            n -= static_cast<std::size_t>(w);
        }
    }
    void write(std::string_view s) { write(s.data(), s.size()); }

    void commit() {
        if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
            fd_ = -1;
            throw error(shown_path(target_) + ": write failed (" + std::strerror(errno) + ")");
        }
        fd_ = -1;
        if (::rename(temp_.c_str(), target_.c_str()) != 0)
            throw error(shown_path(target_) + ": cannot replace it (" + std::strerror(errno) + ")");
        committed_ = true;
    }

private:
    std::filesystem::path target_, temp_;
    int fd_ = -1;
    bool committed_ = false;
};

// Writes `text` to `path` atomically (atomic_file).
inline void write_text(const std::filesystem::path& path, std::string_view text) {
    atomic_file f(path);
    f.write(text);
    f.commit();
}

}  // namespace scribe::io
