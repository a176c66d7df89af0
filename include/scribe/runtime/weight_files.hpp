// scribe/runtime/weight_files.hpp — where every weight of a model folder is, for
// the tensor-parallel ranks a process runs, checked before a byte of it is used:
// the one validation `generate`, `export-hlo`, `inspect` and `shard` share.
//
// A folder holds either the whole checkpoint (model.safetensors, or the shards of
// model.safetensors.index.json; or pytorch_model.bin, or its shards: see
// io/checkpoint.hpp), from which each rank's part is cut, or, written
// by `scribe shard`, one file per rank: model.tp<N>-rank<R>.safetensors (N >= 1),
// holding that rank's part of every weight under its Hugging Face name, in the
// dims the model reads it as, with __metadata__ scribe.tp_degree and scribe.rank.
// Written by `scribe shard --dtype q8` (or q4), the files say scribe.weights "q8"
// ("q4"), and each matrix the model holds in blocks is stored as the loader would
// make it: q (I8 [out..., q8_blocks, q8_block], or U8 [out..., q4_blocks, q4_pair])
// under the weight's name and its f16 block scales under q8::scale_name(name)
// (ops/quantize.hpp); the rest is F32.
//
// Checked here, each error naming the file and the tensor: the config's layer
// count against the tensors there are (a config claiming 10^9 layers is refused
// before a list of them is made), every weight present, of the stored shape the
// config implies (or the rank's part of it) and a float dtype (or a q8/q4 weight's
// I8/U8 blocks and finite F16 scales), no tensor the model does not read, a
// pre-sharded folder complete and run at its own degree.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "../cpu/array.hpp"
#include "../io/checkpoint.hpp"
#include "../io/safetensors.hpp"
#include "../models/common.hpp"
#include "../ops/quantize.hpp"
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

// scribe.weights in a rank file's __metadata__: "q8" or "q4" when its matrices are
// stored in 8-bit or 4-bit blocks (absent: float weights).
inline constexpr const char* weights_key = "scribe.weights";

}  // namespace detail

// The block format `dir`'s rank files for `degree` ranks hold their matrices in
// (rank 0's file says so; plain when float or not pre-sharded): the format such
// a folder runs in.
inline weight_format presharded_format(const std::filesystem::path& dir, std::int64_t degree) {
    std::error_code ec;
    const auto path = rank_file(dir, degree, 0);
    if (!std::filesystem::exists(path, ec)) return weight_format::plain;
    const io::safetensors f(path);
    const auto it = f.metadata().find(detail::weights_key);
    if (it == f.metadata().end()) return weight_format::plain;
    return it->second == "q8" ? weight_format::q8 : it->second == "q4" ? weight_format::q4 : weight_format::plain;
}

template <class Family>
class weight_files {
public:
    using config = typename Family::config;
    // A weight's bytes for one rank: in `file` under `name` (the family's prefix
    // may be part of it), cut for the rank unless the file is pre-sharded.
    struct source {
        const io::tensor_file* file;
        std::string name;
        std::string scale;  // a pre-sharded q8 weight's scales (q under `name`); else empty
    };

    // Checks the folder's weights for the `ranks` (of `degree`) this process runs.
    weight_files(const std::filesystem::path& dir, const config& c, std::int64_t degree, const std::vector<int>& ranks)
        : dir_(dir), degree_(degree), ranks_(ranks) {
        std::error_code ec;
        const bool whole = io::has_checkpoint(dir);
        presharded_ = std::filesystem::exists(rank_file(dir, degree, ranks.front()), ec);
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
    // The block format the folder's rank files hold their matrices in
    // (`scribe shard --dtype q8` or q4), or plain.
    weight_format blocks() const { return blocks_; }
    // Whether weight i of local rank k is stored in blocks (q and scales).
    bool stored_q8(std::size_t k, std::size_t i) const { return !found_[k][i].scale.empty(); }
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
        if (!src.scale.empty())
            throw error(src.file->path().string() + ": tensor `" + src.name + "` holds blocks (" + std::string(name(blocks_)) +
                        "), not float values; run the folder with --dtype " + std::string(name(blocks_)));
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
            throw error(src.file->path().string() + ": tensor `" + src.name + "` is needed whole (blocks across the ranks' parts " +
                        "of it), but the folder holds each rank's part only; load the unsharded folder");
        const auto bytes = src.file->bytes(src.name);
        return in_type(cpu::array::borrow(stored_type(k, i), s.dims, bytes.data(), bytes.size()), type);
    }

    // Weight i of local rank k stored in blocks: {q, scale}, borrowed from the file.
    std::pair<cpu::array, cpu::array> q8_arrays(std::size_t k, std::size_t i) const {
        const auto& src = found_[k][i];
        const auto l = *q8_layout(i);
        const auto q = src.file->bytes(src.name), scale = src.file->bytes(src.scale);
        return {cpu::array::borrow(q8::storage(l.format).type, l.q, q.data(), q.size()),
                cpu::array::borrow(dtype::f16, l.scale, scale.data(), scale.size())};
    }

    // Every weight of local rank k by name, in the family's order, in `type`
    // (a pre-sharded q8 weight as its q and scales, borrowed, as stored).
    // `progress(done, total)` is told the bytes read so far of bytes_to_read().
    // `put(i, array, out)`, when given, adds weight i to out in its stead (as
    // one array or several: a q8 weight's q and scale), one weight at a time.
    // `keep`, when given, is applied to each array as it is added (the caller
    // copies the ones borrowed from the files into memory of its own there).
    using put_fn = std::function<void(std::size_t, cpu::array, cpu::named_arrays&)>;
    using keep_fn = std::function<cpu::array(cpu::array)>;
    cpu::named_arrays arrays(std::size_t k, dtype type, const std::function<void(std::size_t, std::size_t)>& progress = {},
                             const put_fn& put = {}, const keep_fn& keep = {}) const {
        cpu::named_arrays out;
        const auto total = progress ? bytes_to_read() : 0;
        for (std::size_t i = 0; i < specs_.size(); ++i) {
            const auto before = out.size();
            if (stored_q8(k, i)) {
                auto [q, scale] = q8_arrays(k, i);
                out.emplace_back(specs_[i].name, std::move(q));
                out.emplace_back(q8::scale_name(specs_[i].name), std::move(scale));
            } else if (put) {
                put(i, array(k, i, type), out);
            } else {
                out.emplace_back(specs_[i].name, array(k, i, type));
            }
            if (keep)
                for (auto j = before; j < out.size(); ++j) out[j].second = keep(std::move(out[j].second));
            if (!progress) continue;
            progress_ += bytes_of(found_[k][i]) / (presharded_ ? 1 : static_cast<std::size_t>(degree_));
            progress(std::min(progress_, total), total);
        }
        return out;
    }

    // Bytes read from the files to load the local ranks' weights.
    std::size_t bytes_to_read() const {
        std::size_t total = 0;
        for (std::size_t k = 0; k < found_.size(); ++k)
            for (const auto& s : found_[k]) {
                const auto n = bytes_of(s);
                total += presharded_ ? n : n / static_cast<std::size_t>(degree_);
            }
        return total;
    }

private:
    static std::size_t bytes_of(const source& s) { return s.file->bytes(s.name).size() + (s.scale.empty() ? 0 : s.file->bytes(s.scale).size()); }

    // The layout of weight i's rank part when a q8 or q4 folder stores it in
    // blocks: as the loader decides (runtime/decoder.hpp), on the whole weight
    // and on the part; else nullopt.
    std::optional<q8::layout> q8_layout(std::size_t i) const {
        const auto& s = specs_[i];
        if (!q8::plan(s.dims, s.in, blocks_)) return std::nullopt;
        return q8::plan(parallel::shard_shape(s.dims, s.split, degree_), s.in, blocks_);
    }

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
        throw error(dir_.string() + ": no model.safetensors or model.safetensors.index.json (nor pytorch_model.bin or pytorch_model.bin.index.json)");
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
                throw error(ck.source().string() + ": tensor `" + s.name + "` is missing (" + article() + Family::name +
                            " with " + std::to_string(c.n_layer) + " layers needs it)");
            names.push_back({&ck.shard_of(*n), *n, {}});
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
        const auto format = meta(detail::weights_key);
        if (format != "(none)" && format != "q8" && format != "q4")
            throw error(path + ": __metadata__ says " + detail::weights_key + " \"" + format +
                        "\"; Scribe knows \"q8\" and \"q4\" (or none: float weights)");
        const auto held = format == "q8" ? weight_format::q8 : format == "q4" ? weight_format::q4 : weight_format::plain;
        auto said = [](weight_format f) { return f == weight_format::plain ? std::string("float") : std::string(name(f)); };
        if (found_.empty()) blocks_ = held;
        else if (blocks_ != held)
            throw error(path + ": " + said(held) + " weights, but rank " + std::to_string(ranks_.front()) + "'s file holds " + said(blocks_) +
                        " ones; the rank files do not belong together: run `scribe shard` again");
        std::vector<source> names;
        for (std::size_t i = 0; i < specs_.size(); ++i) {
            const auto& s = specs_[i];
            const auto scale = q8_layout(i) ? q8::scale_name(s.name) : std::string();
            for (const auto& n : {s.name, scale})
                if (!n.empty() && !f.contains(n))
                    throw error(path + ": tensor `" + n + "` is missing (rank " + std::to_string(r) + " of " + article() + Family::name +
                                " with " + std::to_string(c.n_layer) + " layers" + (blocks_ != weight_format::plain ? ", in " + std::string(name(blocks_)) + "," : std::string()) + " needs it)");
            names.push_back({&f, s.name, scale});
        }
        std::vector<std::string> all;
        for (const auto& e : f.tensors()) all.push_back(e.name);
        std::vector<source> used = names;
        for (const auto& n : names)
            if (!n.scale.empty()) used.push_back({&f, n.scale, {}});
        check_extra(all, used, [&](const std::string&) { return path; });
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
            if (!src.scale.empty()) {
                check_q8(src, *q8_layout(i), rank);
                continue;
            }
            const auto& e = src.file->entry(src.name);
            std::vector<std::int64_t> want = s.stored;
            if (presharded_) {
                want.clear();
                for (const auto& d : parallel::shard_shape(s.dims, s.split, degree_)) want.push_back(d.extent);
            }
            if (e.shape != want)
                throw error(src.file->path().string() + ": tensor `" + src.name + "` is " + io::shape_text(e.shape) + " but " +
                            (presharded_ ? "rank " + std::to_string(rank) + "'s part" : std::string("config.json")) + " needs " +
                            io::shape_text(want));
            if (e.type != dtype::f32 && e.type != dtype::f16 && e.type != dtype::bf16)
                throw error(src.file->path().string() + ": tensor `" + src.name + "` is " + std::string(name(e.type)) +
                            "; weights must be F32, F16 or BF16");
        }
    }

    // A pre-sharded q8 (q4) weight: q is I8 (U8) and scale F16 in the part's
    // layout, every scale finite (a NaN or infinite scale would make every
    // product with the block NaN).
    void check_q8(const source& src, const q8::layout& l, int rank) const {
        const auto path = src.file->path().string();
        auto extents = [](const shape& dims) {
            std::vector<std::int64_t> e;
            for (const auto& d : dims) e.push_back(d.extent);
            return e;
        };
        const std::string format(name(l.format));
        for (const auto& [n, type, dims] : {std::tuple{src.name, q8::storage(l.format).type, l.q}, std::tuple{src.scale, dtype::f16, l.scale}}) {
            const auto& e = src.file->entry(n);
            if (e.shape != extents(dims) || e.type != type)
                throw error(path + ": tensor `" + n + "` is " + std::string(name(e.type)) + io::shape_text(e.shape) + " but rank " +
                            std::to_string(rank) + "'s part in " + format + " needs " + std::string(name(type)) + io::shape_text(extents(dims)));
        }
        const auto bytes = src.file->bytes(src.scale);
        if (reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(std::uint16_t) != 0)
            throw error(path + ": tensor `" + src.scale + "` starts at an odd byte offset; F16 data must be 2-byte aligned");
        for (std::size_t b = 0; b + 2 <= bytes.size(); b += 2) {
            const auto bits = static_cast<std::uint16_t>(bytes[b] | (bytes[b + 1] << 8));
            if ((bits & 0x7c00) == 0x7c00)
                throw error(path + ": tensor `" + src.scale + "` holds a NaN or an infinity (block " + std::to_string(b / 2) +
                            "); a " + format + " block scale must be finite");
        }
    }

    std::filesystem::path dir_;
    std::int64_t degree_;
    std::vector<int> ranks_;
    mutable std::size_t progress_ = 0;  // bytes arrays() has reported read, over all local ranks
    bool presharded_ = false;
    weight_format blocks_ = weight_format::plain;  // how the rank files hold their matrices
    std::optional<io::checkpoint> full_;   // the unsharded checkpoint, mmapped
    std::deque<io::safetensors> files_;    // or the local ranks' pre-sharded files
    std::vector<models::weight_spec> specs_;
    std::vector<std::vector<source>> found_;  // per local rank, per spec
};

}  // namespace scribe::runtime
