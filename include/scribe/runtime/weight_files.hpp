// scribe/runtime/weight_files.hpp — where every weight of a model folder is, for
// the tensor-parallel ranks a process runs, checked before a byte of it is used:
// the one validation `generate`, `export-hlo`, `inspect` and `shard` share.
//
// A folder holds either the whole checkpoint (model.safetensors, or the shards of
// model.safetensors.index.json), from which each rank's part is cut, or, written
// by `scribe shard`, one file per rank: model.tp<N>-rank<R>.safetensors, holding
// that rank's part of every weight under its Hugging Face name, in the dims the
// model reads it as, with __metadata__ scribe.tp_degree and scribe.rank.
//
// Checked here, each error naming the file and the tensor: the config's layer
// count against the tensors there are (a config claiming 10^9 layers is refused
// before a list of them is made), every weight present, of the stored shape the
// config implies (or the rank's part of it) and a float dtype, no tensor the model
// does not read, a pre-sharded folder complete and run at its own degree.
#pragma once

#include <algorithm>
#include <deque>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "../cpu/array.hpp"
#include "../io/safetensors.hpp"
#include "../models/common.hpp"
#include "../parallel/weights.hpp"

namespace scribe::runtime {

// The file of rank `rank` in a folder pre-sharded for `degree` ranks.
inline std::filesystem::path rank_file(const std::filesystem::path& dir, std::int64_t degree, std::int64_t rank) {
    return dir / ("model.tp" + std::to_string(degree) + "-rank" + std::to_string(rank) + ".safetensors");
}

namespace detail {

// Converts `n` elements of type `from` at `src` to `to` at `dst` (floats only).
inline void convert_floats(dtype from, const unsigned char* src, dtype to, unsigned char* dst, std::int64_t n) {
    const auto fs = info(from).bytes, ts = info(to).bytes;
    for (std::int64_t i = 0; i < n; ++i)
        store_as(to, load_as_double(from, src + static_cast<std::size_t>(i) * fs), dst + static_cast<std::size_t>(i) * ts);
}

inline std::string shape_text(const std::vector<std::int64_t>& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

// The degrees a folder holds rank files for (model.tp<N>-rank0.safetensors).
inline std::vector<std::int64_t> presharded_degrees(const std::filesystem::path& dir) {
    std::vector<std::int64_t> out;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        const auto n = it->path().filename().string();
        if (!n.starts_with("model.tp") || !n.ends_with("-rank0.safetensors")) continue;
        const auto digits = n.substr(8, n.size() - 8 - 18);
        if (digits.empty() || digits.size() > 6 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
            continue;
        out.push_back(std::stoll(digits));
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace detail

template <class Family>
class weight_files {
public:
    using config = typename Family::config;
    // A weight's bytes for one rank: in `file` under `name` (the family's prefix
    // may be part of it), cut for the rank unless the file is pre-sharded.
    struct source {
        const io::safetensors* file;
        std::string name;
    };

    // Checks the folder's weights for the `ranks` (of `degree`) this process runs.
    weight_files(const std::filesystem::path& dir, const config& c, std::int64_t degree, const std::vector<int>& ranks)
        : dir_(dir), degree_(degree), ranks_(ranks) {
        std::error_code ec;
        const bool whole = std::filesystem::exists(dir / "model.safetensors", ec) ||
                           std::filesystem::is_symlink(dir / "model.safetensors", ec) ||
                           std::filesystem::exists(dir / "model.safetensors.index.json", ec);
        presharded_ = degree > 1 && std::filesystem::exists(rank_file(dir, degree, ranks.front()), ec);
        if (!whole && !presharded_) refuse_missing(degree);
        if (presharded_) {
            for (const auto r : ranks) {
                const auto path = rank_file(dir, degree, r);
                if (!std::filesystem::exists(path, ec))
                    throw error(dir.string() + ": pre-sharded for " + std::to_string(degree) + " ranks, but " +
                                path.filename().string() + " (rank " + std::to_string(r) + ") is missing; run `scribe shard --tp " +
                                std::to_string(degree) + "` again");
                files_.emplace_back(path);
            }
        } else {
            full_.emplace(dir);
        }
        check_layers(c);
        specs_ = Family::weights(c, degree);
        if (presharded_) {
            for (std::size_t k = 0; k < ranks.size(); ++k) find_presharded(c, files_[k], ranks[k]);
        } else {
            find_whole(c);
            for (std::size_t k = 1; k < ranks.size(); ++k) found_.push_back(found_.front());
        }
        for (std::size_t k = 0; k < ranks.size(); ++k) check_entries(k, ranks[k]);
    }

    // `at()` points into the files this object holds.
    weight_files(const weight_files&) = delete;
    weight_files& operator=(const weight_files&) = delete;

    bool presharded() const { return presharded_; }
    const std::vector<models::weight_spec>& specs() const { return specs_; }
    // Where weight i of local rank k is.
    const source& at(std::size_t k, std::size_t i) const { return found_[k][i]; }
    // The dtype weight i of local rank k is stored in.
    dtype stored_type(std::size_t k, std::size_t i) const { return found_[k][i].file->entry(found_[k][i].name).type; }
    // Weight i of local rank k in dtype `type`: the rank's part, borrowed from the
    // mmapped file where it is stored in `type` and cut without a copy (a view
    // valid while this object lives), else a new array converted once here.
    cpu::array array(std::size_t k, std::size_t i, dtype type) const {
        const auto& s = specs_[i];
        const auto& src = found_[k][i];
        const auto stored = stored_type(k, i);
        const auto bytes = src.file->bytes(src.name);
        auto part = presharded_ ? cpu::array::borrow(stored, parallel::shard_shape(s.dims, s.split, degree_), bytes.data(), bytes.size())
                                : parallel::shard(cpu::array::borrow(stored, s.dims, bytes.data(), bytes.size()), s.split, degree_,
                                                  ranks_[k]);
        return in_type(std::move(part), type);
    }
    // Weight i whole (every rank's part), in dtype `type`: from the unsharded
    // checkpoint only.
    cpu::array whole_array(std::size_t k, std::size_t i, dtype type) const {
        const auto& s = specs_[i];
        const auto& src = found_[k][i];
        if (presharded_)
            throw error(src.file->path().string() + ": tensor `" + src.name + "` is needed whole (q8 blocks across the ranks' parts " +
                        "of it), but the folder holds each rank's part only; load the unsharded folder");
        const auto bytes = src.file->bytes(src.name);
        return in_type(cpu::array::borrow(stored_type(k, i), s.dims, bytes.data(), bytes.size()), type);
    }

    // Every weight of local rank k by name, in the family's order, in `type`.
    // `progress(done, total)` is told the bytes read so far of bytes_to_read().
    // `put(i, array, out)`, when given, adds weight i to out in its stead (as
    // one array or several: a q8 weight's q and scale), one weight at a time.
    using put_fn = std::function<void(std::size_t, cpu::array, cpu::named_arrays&)>;
    cpu::named_arrays arrays(std::size_t k, dtype type, const std::function<void(std::size_t, std::size_t)>& progress = {},
                             const put_fn& put = {}) const {
        cpu::named_arrays out;
        const auto total = progress ? bytes_to_read() : 0;
        for (std::size_t i = 0; i < specs_.size(); ++i) {
            if (put) put(i, array(k, i, type), out);
            else out.emplace_back(specs_[i].name, array(k, i, type));
            if (!progress) continue;
            progress_ += found_[k][i].file->bytes(found_[k][i].name).size() / (presharded_ ? 1 : static_cast<std::size_t>(degree_));
            progress(std::min(progress_, total), total);
        }
        return out;
    }

    // Bytes read from the files to load the local ranks' weights.
    std::size_t bytes_to_read() const {
        std::size_t total = 0;
        for (std::size_t k = 0; k < found_.size(); ++k)
            for (const auto& s : found_[k]) {
                const auto n = s.file->bytes(s.name).size();
                total += presharded_ ? n : n / static_cast<std::size_t>(degree_);
            }
        return total;
    }

private:
    // a itself when it is in `type`, else a new array converted once.
    static cpu::array in_type(cpu::array a, dtype type) {
        if (a.type() == type) return a;
        auto out = cpu::array::uninitialized(type, a.dims());
        detail::convert_floats(a.type(), a.data(), type, out.mutable_data(), a.size());
        return out;
    }

    static std::string article() { return std::string_view("AEIOU").find(Family::name[0]) != std::string_view::npos ? "an " : "a "; }

    [[noreturn]] void refuse_missing(std::int64_t degree) const {
        const auto degrees = detail::presharded_degrees(dir_);
        if (!degrees.empty()) {
            std::string list;
            for (auto d : degrees) list += (list.empty() ? "" : ", ") + std::to_string(d);
            throw error(dir_.string() + ": the folder is pre-sharded for tensor-parallel degree " + list + " (model.tp" +
                        std::to_string(degrees.front()) + "-rank*.safetensors) and has no model.safetensors, so it runs only at that " +
                        "degree: give --tp " + std::to_string(degrees.front()) + " (this run asked for " + std::to_string(degree) + ")");
        }
        throw error(dir_.string() + ": no model.safetensors or model.safetensors.index.json");
    }

    // Every layer has at least one tensor, so a config with more layers than the
    // files have tensors is wrong, and is refused before a weight list is made.
    void check_layers(const config& c) const {
        std::size_t tensors = 0;
        if (full_) tensors = full_->names().size();
        for (const auto& f : files_) tensors = std::max(tensors, f.tensors().size());
        if (static_cast<std::uint64_t>(c.n_layer) > tensors)
            throw error((dir_ / "config.json").string() + ": the config has " + std::to_string(c.n_layer) +
                        " layers, but the checkpoint holds only " + std::to_string(tensors) +
                        " tensors (each layer has several): config.json and the weights do not belong together");
    }

    void find_whole(const config& c) {
        const auto& ck = *full_;
        std::vector<source> names;
        for (const auto& s : specs_) {
            const auto prefixed = std::string(Family::prefix) + s.name;
            const auto n = ck.contains(s.name) ? std::optional(s.name) : ck.contains(prefixed) ? std::optional(prefixed) : std::nullopt;
            if (!n)
                throw error((dir_ / "model.safetensors").string() + ": tensor `" + s.name + "` is missing (" + article() + Family::name +
                            " with " + std::to_string(c.n_layer) + " layers needs it)");
            names.push_back({&ck.shard_of(*n), *n});
        }
        check_extra(ck.names(), names, [&](const std::string& n) { return ck.shard_of(n).path().string(); });
        found_.push_back(std::move(names));
    }

    void find_presharded(const config& c, const io::safetensors& f, int r) {
        const auto path = f.path().string();
        auto meta = [&](const char* key) {
            const auto it = f.metadata().find(key);
            return it == f.metadata().end() ? std::string("(none)") : io::printable(it->second);
        };
        if (meta("scribe.tp_degree") != std::to_string(degree_) || meta("scribe.rank") != std::to_string(r))
            throw error(path + ": __metadata__ says tp_degree " + meta("scribe.tp_degree") + ", rank " + meta("scribe.rank") +
                        "; this is rank " + std::to_string(r) + " of " + std::to_string(degree_));
        std::vector<source> names;
        for (const auto& s : specs_) {
            if (!f.contains(s.name))
                throw error(path + ": tensor `" + s.name + "` is missing (rank " + std::to_string(r) + " of " + article() + Family::name +
                            " with " + std::to_string(c.n_layer) + " layers needs it)");
            names.push_back({&f, s.name});
        }
        std::vector<std::string> all;
        for (const auto& e : f.tensors()) all.push_back(e.name);
        check_extra(all, names, [&](const std::string&) { return path; });
        found_.push_back(std::move(names));
    }

    template <class FileOf>
    void check_extra(const std::vector<std::string>& names, const std::vector<source>& used, FileOf&& file_of) const {
        std::vector<std::string> wanted;
        for (const auto& u : used) wanted.push_back(u.name);
        std::sort(wanted.begin(), wanted.end());
        for (const auto& n : names) {
            if (Family::ignored_tensor(n) || std::binary_search(wanted.begin(), wanted.end(), n)) continue;
            throw error(file_of(n) + ": unexpected tensor `" + io::printable(n) + "` (not a weight of " + article() + Family::name +
                        " with this config.json)");
        }
    }

    void check_entries(std::size_t k, int rank) const {
        for (std::size_t i = 0; i < specs_.size(); ++i) {
            const auto& s = specs_[i];
            const auto& src = found_[k][i];
            const auto& e = src.file->entry(src.name);
            std::vector<std::int64_t> want = s.stored;
            if (presharded_) {
                want.clear();
                for (const auto& d : parallel::shard_shape(s.dims, s.split, degree_)) want.push_back(d.extent);
            }
            if (e.shape != want)
                throw error(src.file->path().string() + ": tensor `" + src.name + "` is " + detail::shape_text(e.shape) + " but " +
                            (presharded_ ? "rank " + std::to_string(rank) + "'s part" : std::string("config.json")) + " needs " +
                            detail::shape_text(want));
            if (e.type != dtype::f32 && e.type != dtype::f16 && e.type != dtype::bf16)
                throw error(src.file->path().string() + ": tensor `" + src.name + "` is " + std::string(name(e.type)) +
                            "; weights must be F32, F16 or BF16");
        }
    }

    std::filesystem::path dir_;
    std::int64_t degree_;
    std::vector<int> ranks_;
    mutable std::size_t progress_ = 0;  // bytes arrays() has reported read, over all local ranks
    bool presharded_ = false;
    std::optional<io::checkpoint> full_;   // the unsharded checkpoint, mmapped
    std::deque<io::safetensors> files_;    // or the local ranks' pre-sharded files
    std::vector<models::weight_spec> specs_;
    std::vector<std::vector<source>> found_;  // per local rank, per spec
};

}  // namespace scribe::runtime
