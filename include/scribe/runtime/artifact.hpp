// scribe/runtime/artifact.hpp — a compiled artifact: the folder `scribe compile`
// (runtime/compile.hpp) writes so that a decoder starts with nothing to convert
// or pack, as transformers-neuronx's saved compiled artifacts start without
// compiling:
//
//   artifact.json                      what it was compiled for, and its key (below)
//   config.json, tokenizer files       copied from the model folder
//   model.tp<N>-rank<R>.safetensors    each rank's weights, converted to the dtype
//                                      (loaded_model::save_sharded's rank files)
//   packs.tp<N>-rank<R>.safetensors    each rank's weights as the kernels read them
//                                      (cpu/packs.hpp): GEMM panels for prefill and
//                                      [n, k] rows for decode, one tensor per pack
//                                      named <weight>@<form>, the data 64-byte aligned
//   hlo/                               the graphs: HLO text, HloModuleProto and
//                                      manifest.json, as export-hlo writes them
//
// Every path inside is relative, so the folder can be moved or copied anywhere.
// Loading maps the rank and pack files and reads them in place: nothing is
// converted, packed or copied.
//
// artifact.json holds "format": "scribe-artifact", "version" (artifact_version:
// what this code reads), "family", "tp", "dtype" (f32, f16, bf16, q8 or q4),
// "buckets", "batch", "machine" (the kernels the packs are laid out for:
// machine_key()), "source" (the model folder it was compiled from, for messages)
// and "key": a hash of the format version, the family, config.json, those
// options and every weight's name and shape, computed again at load so an
// artifact whose config or options were changed after compiling is refused.
// Refused too, each with the command that compiles it again: another format
// version, or packs made for another CPU's kernels.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../cpu/simd/gemm.hpp"
#include "../cpu/simd/gemm_bf16.hpp"
#include "../io/file.hpp"
#include "../io/json.hpp"
#include "../models/common.hpp"
#include "../ops/quantize.hpp"

namespace scribe::runtime {

// The artifact format this code writes and reads.
inline constexpr int artifact_version = 1;
inline constexpr const char* artifact_file = "artifact.json";

// The file of rank `rank`'s packs in an artifact for `degree` ranks.
inline std::filesystem::path pack_file(const std::filesystem::path& dir, std::int64_t degree, std::int64_t rank) {
    return dir / ("packs.tp" + std::to_string(degree) + "-rank" + std::to_string(rank) + ".safetensors");
}

// What the packs this CPU makes are laid out for: the GEMM micro-kernel's tile
// and k blocks, whether bf16 products use bf16 pair panels (bf16_pairs_preferred), 32
// columns wide for AMX, and whether f16 products split their weights into bf16
// pairs (AMX). Packs made where this differs are laid out for other kernels.
inline std::string machine_key() {
    const auto k = cpu::simd::detail::choose_kernel();
    return std::string("gemm ") + k.name + " kc " + std::to_string(k.kc) + "; bf16 products " +
           (!cpu::simd::detail::bf16_pairs_preferred() ? "in f32 panels"
            : cpu::simd::detail::has_amx_bf16()  ? "in bf16 pairs for amx, k blocks of " +
                                                      std::to_string(cpu::simd::detail::choose_pair_kernel(0).kc) +
                                                      "; f16 products split into bf16 pairs"
                                                 : "in bf16 pairs");
}

// What an artifact is compiled for.
struct artifact_options {
    std::int64_t tp = 1;
    dtype type = dtype::f32;
    weight_format weights = weight_format::plain;
    std::vector<std::int64_t> buckets{};  // the prefill buckets (empty: the runtime's defaults)
    std::int64_t batch = 1;               // sequences per step the packs were made for

    // As --dtype says it: f32, f16, bf16, q8 or q4.
    std::string dtype_name() const { return weights == weight_format::plain ? std::string(name(type)) : std::string(name(weights)); }
};

namespace detail {

inline std::uint64_t fnv1a(std::string_view s, std::uint64_t h = 0xcbf29ce484222325ull) {
    for (const unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return h;
}

inline std::string join(const std::vector<std::int64_t>& v) {
    std::string s;
    for (auto x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
    return s;
}

}  // namespace detail

// The key of an artifact of `family` with config.json `config` (parsed), compiled
// for `o`, whose ranks hold `specs` (Family::weights(config, o.tp)).
inline std::string artifact_key(std::string_view family, const nlohmann::json& config, const artifact_options& o,
                                const std::vector<models::weight_spec>& specs) {
    std::string text = "scribe-artifact " + std::to_string(artifact_version) + "\n" + std::string(family) + "\n" + config.dump() + "\n" +
                       "tp " + std::to_string(o.tp) + " dtype " + o.dtype_name() + " buckets " + detail::join(o.buckets) + " batch " +
                       std::to_string(o.batch) + "\n";
    for (const auto& s : specs) text += s.name + " " + to_string(s.dims) + "\n";
    // Two 64-bit FNV-1a hashes (of the text and of it reversed) in hex.
    const auto a = detail::fnv1a(text), b = detail::fnv1a(std::string(text.rbegin(), text.rend()));
    char out[33];
    std::snprintf(out, sizeof out, "%016llx%016llx", static_cast<unsigned long long>(a), static_cast<unsigned long long>(b));
    return out;
}

// Whether `dir` is a compiled artifact (holds artifact.json).
inline bool is_artifact(const std::filesystem::path& dir) {
    std::error_code ec;
    return std::filesystem::exists(dir / artifact_file, ec);
}

// An artifact's artifact.json, read and checked.
struct artifact {
    artifact_options options;
    std::string family, machine, key, source;

    // The command that compiles this artifact again (where it was compiled from).
    std::string recompile(const std::filesystem::path& dir) const {
        std::string s = "scribe compile " + (source.empty() ? std::string("MODEL") : io::printable(source, 512)) + " --out " +
                        io::printable(dir.string()) + " --tp " + std::to_string(options.tp) + " --dtype " + options.dtype_name();
        if (!options.buckets.empty()) s += " --buckets " + detail::join(options.buckets);
        return s + " --batch " + std::to_string(options.batch);
    }

    // Reads dir/artifact.json. Refuses another format version and packs made for
    // other kernels than this CPU's, saying how to compile the artifact again.
    static artifact read(const std::filesystem::path& dir) {
        const auto path = dir / artifact_file;
        const auto where = io::shown_path(path);
        const auto j = io::read_json(path, 1 << 20, "the artifact's description");
        if (!j.is_object() || j.value("format", nlohmann::json()) != "scribe-artifact")
            throw error(where + ": not a Scribe artifact (\"format\" is not \"scribe-artifact\")");
        artifact a;
        auto text_of = [&](const char* key) {
            if (!j.contains(key) || !j[key].is_string()) throw error(where + ": \"" + std::string(key) + "\" must be a string");
            return j[key].get<std::string>();
        };
        auto integer = [&](const char* key, std::int64_t lo, std::int64_t hi) {
            if (!j.contains(key) || !j[key].is_number_integer()) throw error(where + ": \"" + std::string(key) + "\" must be an integer");
            const auto v = j[key].get<std::int64_t>();
            if (v < lo || v > hi)
                throw error(where + ": \"" + std::string(key) + "\" is " + std::to_string(v) + ", not between " + std::to_string(lo) + " and " +
                            std::to_string(hi));
            return v;
        };
        a.source = j.contains("source") && j["source"].is_string() ? j["source"].get<std::string>() : std::string();
        // The options (checked after the version: a later format may have changed
        // them; before it they only make the message's command).
        const auto read_options = [&] {
            a.family = text_of("family");
            a.options.tp = integer("tp", 1, 4096);
            a.options.batch = integer("batch", 1, 1 << 20);
            const auto d = text_of("dtype");
            if (d == "q8" || d == "q4") {
                a.options.weights = d == "q8" ? weight_format::q8 : weight_format::q4;
            } else if (d == "f32" || d == "f16" || d == "bf16") {
                a.options.type = d == "f32" ? dtype::f32 : d == "f16" ? dtype::f16 : dtype::bf16;
            } else {
                throw error(where + ": \"dtype\" is \"" + io::printable(d) + "\", not f32, f16, bf16, q8 or q4");
            }
            if (!j.contains("buckets") || !j["buckets"].is_array() || j["buckets"].size() > 4096)
                throw error(where + ": \"buckets\" must be a list of at most 4096 lengths");
            for (const auto& b : j["buckets"]) {
                if (!b.is_number_integer() || b.get<std::int64_t>() < 1 || b.get<std::int64_t>() > (std::int64_t{1} << 40))
                    throw error(where + ": \"buckets\" holds " + io::printable(b.dump()) + ", not a positive length");
                a.options.buckets.push_back(b.get<std::int64_t>());
            }
        };
        if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<std::int64_t>() != artifact_version) {
            const auto v = j.contains("version") ? io::printable(j["version"].dump()) : std::string("none");
            try {
                read_options();
            } catch (const error&) {  // the command then says what it could
            }
            throw error(where + ": artifact format version " + v + ", but this Scribe reads version " + std::to_string(artifact_version) +
                        " only; compile the model again with this Scribe: " + a.recompile(dir));
        }
        read_options();
        a.key = text_of("key");
        a.machine = text_of("machine");
        if (a.machine != machine_key())
            throw error(where + ": compiled for another CPU's kernels (its packs are laid out for \"" + io::printable(a.machine) +
                        "\", this CPU's kernels read \"" + machine_key() + "\"); compile the model again on this machine: " +
                        a.recompile(dir));
        return a;
    }

    // Checks the key against the artifact's config.json (parsed) and the weights
    // its family declares: a config or options changed after compiling are refused.
    void check_key(const std::filesystem::path& dir, const nlohmann::json& config, const std::vector<models::weight_spec>& specs) const {
        if (artifact_key(family, config, options, specs) != key)
            throw error(io::shown_path(dir / artifact_file) + ": its key does not match config.json and the options it records (was "
                        "config.json or artifact.json edited after compiling?); compile the model again: " + recompile(dir));
    }

    // Writes `dir`/artifact.json (atomically; written last, so a folder whose
    // compilation stopped half-way is not taken for an artifact).
    void write(const std::filesystem::path& dir) const {
        nlohmann::ordered_json j = {{"format", "scribe-artifact"}, {"version", artifact_version}, {"family", family},
                                    {"tp", options.tp},            {"dtype", options.dtype_name()}, {"buckets", options.buckets},
                                    {"batch", options.batch},      {"machine", machine},            {"key", key},
                                    {"source", source}};
        io::write_text(dir / artifact_file, j.dump(2) + "\n");
    }
};

}  // namespace scribe::runtime
