// scribe/runtime/compile.hpp — compiles a decoder folder into an artifact
// (runtime/artifact.hpp) that starts with nothing to convert or pack:
//
//     runtime::compile<models::gpt2_family>("gpt2", "gpt2.art", {.tp = 2, .type = dtype::bf16});
//     runtime::decoder<models::gpt2_family> lm("gpt2.art", {.type = dtype::bf16, .tp = 2});   // starts at once
//
// The model is loaded as a decoder would run it (each rank's weights converted
// once), every graph it runs is built (a prefill per bucket, decode and, for
// batches of 8 or more rows, their products) so each weight is packed as the
// kernels read it, and the ranks' weights and packs are written with
// config.json, the tokenizer's files and artifact.json last.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "artifact.hpp"
#include "decoder.hpp"
#include "save.hpp"

namespace scribe::runtime {

struct compile_options {
    unsigned threads = 0;  // CPU threads while compiling; 0: one per hardware thread
    // Called after the weights and packs are written and before artifact.json
    // (scribe compile writes the HLO modules there).
    std::function<void(const artifact&)> before_seal{};
    // Called while weights load: bytes done so far, bytes in all.
    std::function<void(std::size_t, std::size_t)> progress{};
};

// Compiles `model` (a Hugging Face decoder folder) for `o` into `out` (created;
// an artifact already there is replaced). Returns what artifact.json says.
template <class Family>
artifact compile(const std::filesystem::path& model, const std::filesystem::path& out, artifact_options o, const compile_options& c = {}) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(out, ec) && fs::equivalent(out, model, ec)) throw error("compile: the artifact must go to another folder than the model's");
    if (o.batch < 1 || o.batch > max_batch)
        throw error("compile: the batch must be between 1 and " + std::to_string(max_batch) + ", not " + std::to_string(o.batch));
    fs::create_directories(out, ec);
    if (ec || !fs::is_directory(out, ec)) throw error("compile: cannot make the folder " + io::shown_path(out) + " (" + ec.message() + ")");
    // An earlier artifact there is replaced whole: its description first (the
    // folder is not an artifact until it is whole again), then its rank and pack
    // files of any degree and its graphs, so none of another degree or bucket
    // stays behind. A folder that is not an artifact keeps what it holds.
    if (is_artifact(out)) {
        fs::remove(out / artifact_file, ec);
        if (ec) throw error("compile: cannot replace " + io::shown_path(out / artifact_file) + " (" + ec.message() + ")");
        std::vector<fs::path> stale;
        for (auto it = fs::directory_iterator(out, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
            const auto n = it->path().filename().string();
            if ((n.starts_with("model.tp") || n.starts_with("packs.tp")) && n.ends_with(".safetensors")) stale.push_back(it->path());
        }
        for (const auto& f : stale) fs::remove(f, ec);
        fs::remove_all(out / "hlo", ec);
    }
    decoder<Family> lm(model, {.type = o.type, .weights = o.weights, .threads = c.threads, .buckets = o.buckets, .progress = c.progress,
                               .tp = o.tp, .keep_mapped = true});
    o.buckets = lm.buckets();
    // Every graph a generation runs binds the weights, so each is packed once as
    // the kernels read it (the packs are the same whatever the bucket).
    for (auto b : o.buckets) (void)lm.prefill_graph(b, b, o.batch, true);
    (void)lm.decode_graph(o.buckets.front(), o.batch);
    lm.save_sharded(out);
    lm.save_packs(out);
    const auto config = io::read_json(model / "config.json", io::config_file_limit, "the config");
    io::write_text(out / "config.json", config.dump(2) + "\n");
    for (const auto& n : tokenizer_files()) {
        const auto from = model / n;
        if (!fs::is_regular_file(from, ec)) continue;
        io::write_text(out / n, io::read_text(from, io::tokenizer_file_limit, "the tokenizer's " + n));
    }
    artifact a;
    a.options = o;
    a.family = Family::name;
    a.machine = machine_key();
    a.key = artifact_key(a.family, config, o, Family::weights(lm.model_config(), o.tp));
    a.source = model.string();
    if (c.before_seal) c.before_seal(a);
    a.write(out);
    return a;
}

}  // namespace scribe::runtime
