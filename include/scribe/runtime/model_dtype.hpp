// scribe/runtime/model_dtype.hpp — what a model runs in, as a user names it:
// "f32", "f16" or "bf16" (the dtype of its activations and weights), or "q8" /
// "q4" (f32 activations, the matrices in 8-bit or 4-bit blocks of 32 with an f16
// scale each: llama.cpp's Q8_0 and Q4_0, quantized when they load), and the one
// a folder runs in when none is named. The `scribe` program's --dtype and the
// Python package's dtype= read it here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "../core/dtype.hpp"
#include "../core/error.hpp"
#include "../io/file.hpp"
#include "../models/common.hpp"
#include "artifact.hpp"
#include "weight_files.hpp"

namespace scribe::runtime {

struct model_dtype {
    dtype type = dtype::f32;
    models::weight_format weights = models::weight_format::plain;
    bool blocks() const { return weights != models::weight_format::plain; }
    std::string label() const { return blocks() ? std::string(name(weights)) : std::string(name(type)); }
};

// `what` names the setting in the error ("--dtype", "dtype").
inline model_dtype parse_model_dtype(const std::string& s, const std::string& what = "--dtype") {
    if (s == "q8") return {dtype::f32, models::weight_format::q8};
    if (s == "q4") return {dtype::f32, models::weight_format::q4};
    if (s == "f32") return {dtype::f32, models::weight_format::plain};
    if (s == "f16") return {dtype::f16, models::weight_format::plain};
    if (s == "bf16") return {dtype::bf16, models::weight_format::plain};
    throw error(what + " takes f32, f16, bf16, q8 or q4, not \"" + io::printable(s) + "\"");
}

// The dtype a folder runs in when none is named: a compiled artifact's own, the
// block format `scribe shard` wrote it in (for `tp` ranks), else f32.
inline std::string default_model_dtype(const std::filesystem::path& dir, std::int64_t tp) {
    if (is_artifact(dir)) return artifact::read(dir).options.dtype_name();
    const auto f = presharded_format(dir, tp);
    return f == models::weight_format::plain ? "f32" : std::string(name(f));
}

}  // namespace scribe::runtime
