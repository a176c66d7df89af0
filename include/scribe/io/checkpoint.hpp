// scribe/io/checkpoint.hpp — a Hugging Face checkpoint folder's weights, in
// either format it may come in: model.safetensors, or the shards that
// model.safetensors.index.json maps every tensor to; else pytorch_model.bin (a
// torch.save archive, pytorch.hpp), or the shards of pytorch_model.bin.index.json.
// Safetensors is preferred when a folder has both, as transformers does. Each
// shard is opened (and validated) once; every tensor an index names must be in
// the shard it names.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "file.hpp"
#include "json.hpp"
#include "pytorch.hpp"
#include "safetensors.hpp"
#include "tensor_file.hpp"

namespace scribe::io {

// A sharded checkpoint's index (model.safetensors.index.json or
// pytorch_model.bin.index.json): the file each tensor is in
// ("weight_map": tensor name -> file name in the same folder). `source` names it
// in errors. Refuses an empty map and file names that leave the folder.
inline std::map<std::string, std::string> read_weight_map(const nlohmann::json& j, const std::string& source) {
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
        throw error(source + ": no \"weight_map\" object (a sharded checkpoint's index maps each tensor to its file)");
    if (j["weight_map"].empty()) throw error(source + ": the \"weight_map\" is empty: it names no tensor");
    std::map<std::string, std::string> out;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
        const auto what = source + ": weight_map `" + printable(it.key()) + "`";
        if (!it.value().is_string()) throw error(what + " is not a file name");
        const auto file = it.value().get<std::string>();
        if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos || file.find('\0') != std::string::npos)
            throw error(what + " names a file outside the folder: \"" + printable(file) + "\"");
        out[it.key()] = file;
    }
    return out;
}

// The files a folder's whole checkpoint may be in, in the order they are looked for.
inline constexpr const char* checkpoint_files[] = {"model.safetensors.index.json", "model.safetensors",
                                                   "pytorch_model.bin.index.json", "pytorch_model.bin"};

// Whether `dir` has a whole checkpoint (one of checkpoint_files, or a symlink by that name).
inline bool has_checkpoint(const std::filesystem::path& dir) {
    std::error_code ec;
    for (const auto* f : checkpoint_files)
        if (std::filesystem::exists(dir / f, ec) || std::filesystem::is_symlink(dir / f, ec)) return true;
    return false;
}

// Whether a file name in a model folder is part of its whole checkpoint (an index,
// a weights file or a shard of either format).
inline bool is_checkpoint_file(const std::string& name) {
    return name.ends_with(".safetensors") || name == "model.safetensors.index.json" || name == "pytorch_model.bin.index.json" ||
           (name.starts_with("pytorch_model") && name.ends_with(".bin"));
}

class checkpoint {
public:
    explicit checkpoint(const std::filesystem::path& dir) : dir_(dir) {
        std::error_code ec;
        auto present = [&](const char* f) { return std::filesystem::exists(dir / f, ec) || std::filesystem::is_symlink(dir / f, ec); };
        for (const auto* f : checkpoint_files) {
            if (!present(f)) continue;
            source_ = dir / f;
            const std::string name = f;
            const bool torch = name.starts_with("pytorch_model");
            if (name.ends_with(".index.json")) read_index(torch);
            else {
                shards_.push_back(open(source_, torch));
                for (const auto& e : shards_.front()->tensors()) where_[e.name] = 0;
            }
            return;
        }
        throw error(dir.string() + ": no model.safetensors or model.safetensors.index.json (nor pytorch_model.bin or pytorch_model.bin.index.json)");
    }

    // The file that lists the tensors: the index, or the one weights file.
    const std::filesystem::path& source() const { return source_; }
    bool contains(const std::string& name) const { return where_.count(name) != 0; }
    const tensor_file& shard_of(const std::string& name) const {
        const auto it = where_.find(name);
        if (it == where_.end()) throw error(dir_.string() + ": the checkpoint has no tensor `" + printable(name) + "`");
        return *shards_[it->second];
    }
    const tensor_entry& entry(const std::string& name) const { return shard_of(name).entry(name); }
    std::span<const unsigned char> bytes(const std::string& name) const { return shard_of(name).bytes(name); }
    std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto& [n, _] : where_) out.push_back(n);
        return out;
    }
    const std::vector<std::unique_ptr<const tensor_file>>& shards() const { return shards_; }

private:
    static std::unique_ptr<const tensor_file> open(const std::filesystem::path& path, bool torch) {
        if (torch) return std::make_unique<const pytorch_file>(path);
        return std::make_unique<const safetensors>(path);
    }

    void read_index(bool torch) {
        const auto map = read_weight_map(read_json(source_, config_file_limit << 4, "the checkpoint's index"), source_.string());
        std::map<std::string, std::size_t> shard_of_file;
        for (const auto& [tensor, file] : map) {
            auto [f, fresh] = shard_of_file.try_emplace(file, shards_.size());
            if (fresh) shards_.push_back(open(dir_ / file, torch));
            if (!shards_[f->second]->contains(tensor))
                throw error(source_.string() + ": tensor `" + printable(tensor) + "` is mapped to " + printable(file) +
                            ", which does not hold it");
            where_[tensor] = f->second;
        }
    }

    std::filesystem::path dir_, source_;
    std::vector<std::unique_ptr<const tensor_file>> shards_;
    std::map<std::string, std::size_t> where_;
};

}  // namespace scribe::io
