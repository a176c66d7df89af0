// tools/compile.cpp — `scribe compile`: a decoder folder compiled for one way of
// running it (degree, dtype, buckets, batch) into an artifact that starts with
// nothing to convert or pack (runtime/artifact.hpp, runtime/compile.hpp), with
// its graphs as HLO for accelerator compilers.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <unistd.h>

#include <scribe/models/registry.hpp>
#include <scribe/runtime/compile.hpp>

#include "cli.hpp"

namespace scribe::cli {

namespace {

const char* usage_compile = R"(usage: scribe compile [MODEL] --out DIR [--tp N] [--dtype T] [--buckets A,B,...] [--batch B]

Compiles a decoder folder for one way of running it into DIR, a folder that
starts at once:

  model.tp<N>-rank<R>.safetensors   each rank's weights, converted to --dtype
  packs.tp<N>-rank<R>.safetensors   each rank's weights laid out as this CPU's
                                    kernels read them (GEMM panels for prompts,
                                    rows for decoding)
  hlo/                              the prefill and decode graphs as HLO text and
                                    HloModuleProto, with manifest.json (as
                                    export-hlo writes them)
  config.json, tokenizer files      copied from MODEL
  artifact.json                     what it is compiled for, and a key: a hash of
                                    the config, the options, the weights' shapes
                                    and the artifact format version

`scribe generate DIR` (and runtime::decoder in C++) then reads the weights and
their packs in place, with nothing to convert or pack; the degree and dtype are
the artifact's. Every path inside is relative: the folder can be moved or
copied. It is refused, with the command that compiles it again, by a Scribe
that reads another artifact format version, on a CPU whose kernels lay weights
out otherwise (AVX-512 against AVX2, bf16 pair instructions or not), or when
its config.json or artifact.json was changed.

options:
  --out DIR              where to write (required; an earlier artifact there is replaced)
  --tp N                 the tensor-parallel degree it runs at (default 1)
  --dtype T              f32, f16, bf16, q8 or q4, as generate's --dtype (default f32)
  --buckets A,B,...      prompt lengths of the prefill graphs (default: powers of two
                         from 16, and the model's positions)
  --batch B              sequences per step it is compiled for (default 1; larger
                         batches run too, packing what they need as they load)
  --threads N            CPU threads while compiling (default: all)
)";

template <class family>
int compile(const args& a) {
    if (!a.value("out")) throw error("scribe compile needs --out DIR, the folder to write the artifact to (see scribe compile --help)");
    const fs::path out = *a.value("out");
    make_out_folder(out);
    const auto c = family::config::load(a.model / "config.json");
    runtime::artifact_options o;
    o.tp = a.integer("tp", 1, 1, max_tp);
    family::check_tp(c, o.tp);
    const auto md = parse_model_dtype(a.value("dtype").value_or("f32"));
    o.type = md.type;
    o.weights = md.weights;
    o.batch = a.integer("batch", 1, 1, runtime::max_batch);
    if (auto b = a.value("buckets")) o.buckets = parse_list(*b, "--buckets");
    const auto threads = static_cast<unsigned>(a.integer("threads", 0, 0, max_threads));
    const auto start = std::chrono::steady_clock::now();
    const bool tty = isatty(fileno(stderr));
    int shown = -1;
    runtime::compile_options co{.threads = threads};
    co.progress = [&](std::size_t done, std::size_t total) {
        const int pct = total ? static_cast<int>(100 * done / total) : 100;
        if (pct == shown || (!tty && done != total)) return;
        shown = pct;
        std::fprintf(stderr, "\rloading weights %3d%%%s", pct, done == total ? "\n" : "");
    };
    co.before_seal = [&](const runtime::artifact& art) {
        // The graphs as export-hlo writes them, for the same shapes.
        args e;
        e.command = "export-hlo";
        e.model = a.model;
        e.values["out"] = (out / "hlo").string();
        e.values["tp"] = std::to_string(art.options.tp);
        e.values["dtype"] = art.options.dtype_name();
        e.values["batch"] = std::to_string(art.options.batch);
        e.values["buckets"] = list_text(art.options.buckets);
        export_decoder_hlo(e);
    };
    const auto art = runtime::compile<family>(a.model, out, o, co);
    std::size_t bytes = 0;
    std::error_code ec;
    for (const auto& f : fs::recursive_directory_iterator(out, ec))
        if (f.is_regular_file(ec)) bytes += static_cast<std::size_t>(f.file_size(ec));
    std::printf("compiled %s for --tp %lld --dtype %s (buckets %s, batch %lld) into %s: %s, in %.1f s\n", a.model.string().c_str(),
                static_cast<long long>(art.options.tp), art.options.dtype_name().c_str(), list_text(art.options.buckets).c_str(), static_cast<long long>(art.options.batch), out.string().c_str(), mib(bytes).c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    std::printf("key %s; kernels: %s\n", art.key.c_str(), art.machine.c_str());
    std::printf("run it: scribe generate %s\n", out.string().c_str());
    return 0;
}

}  // namespace

int compile_command(int argc, char** argv) {
    const auto a = parse(argc, argv, {"out", "tp", "dtype", "buckets", "batch", "threads"}, {"help"});
    if (a.flag("help")) return std::printf("%s", usage_compile), 0;
    check_model_folder(a.model);
    if (models::is_encoder(a.model))
        throw error("scribe compile makes decoder artifacts; " + a.model.string() + " is an encoder (export its graphs with scribe export-hlo)");
    return models::with_family(a.model, [&]<class family>() { return compile<family>(a); });
}

}  // namespace scribe::cli
