// scribe/runtime/encoder_text.hpp — texts, or pairs of texts, run by an encoder:
// tokenized by its folder's tokenizer with the model's template ([CLS] A [SEP]
// B [SEP], <s> A </s></s> B </s>), checked against the model's positions (cut as
// the tokenizer truncates, or refused with the input named), and run 64 at a
// time. What `scribe classify`, `scribe embed` and the Python package's Encoder
// share.
//
//     runtime::encoder<models::bert_family> m(dir);
//     const auto tok = io::encoder_tokenizer::from_folder(dir, m.model_config().model_type);
//     auto out = runtime::encode_texts(m, tok, {{"A sentence", "Its paraphrase?"}});
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "../io/encoder_tokenizer.hpp"
#include "../io/file.hpp"
#include "../io/json.hpp"
#include "../models/bert_config.hpp"
#include "encoder.hpp"

namespace scribe::runtime {

struct text_input {
    std::string text;
    std::optional<std::string> pair{};
};

struct encode_text_options {
    // Cut an input longer than the model's positions as the tokenizer's
    // truncation does (the longer text of a pair first); false: refuse it.
    bool truncate = false;
    // Told of each input truncation cut: (input, tokens dropped, tokens kept).
    std::function<void(std::size_t, std::size_t, std::size_t)> on_truncate{};
    // What the refusal tells the user to give to truncate ("--truncate").
    std::string truncate_hint = "--truncate";
    // The mean-pooled embedding too (encode_options::mean).
    bool mean = true;
};

template <class Family>
std::vector<encoding> encode_texts(encoder<Family>& m, const io::encoder_tokenizer& tok, const std::vector<text_input>& inputs,
                                   const encode_text_options& o = {}) {
    const auto& c = m.model_config();
    if (tok.vocab_size() > c.vocab_size)
        throw error((m.folder() / "config.json").string() + ": vocab_size is " + std::to_string(c.vocab_size) + " but the tokenizer has " +
                    std::to_string(tok.vocab_size()) + " tokens; the tokenizer and the model do not belong together");
    std::vector<encoder_input> encoded;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const auto& in = inputs[i];
        auto e = tok.encode(in.text, in.pair ? std::optional<std::string_view>(*in.pair) : std::nullopt,
                            o.truncate ? static_cast<std::size_t>(c.n_positions) : 0);
        if (!o.truncate && static_cast<std::int64_t>(e.ids.size()) > c.n_positions)
            throw error("input " + std::to_string(i) + " (\"" + io::printable(in.text.substr(0, 40)) + (in.text.size() > 40 ? "..." : "") +
                        "\") is " + std::to_string(e.ids.size()) + " tokens but the model reads at most " + std::to_string(c.n_positions) +
                        "; give " + o.truncate_hint + " to cut it as the tokenizer does, or shorten it");
        if (e.dropped && o.on_truncate) o.on_truncate(i, e.dropped, e.ids.size());
        // Only BERT reads token types (transformers gives RoBERTa and DistilBERT none).
        if (c.family != models::bert::config::kind::bert) e.token_types.clear();
        encoded.push_back({std::move(e.ids), std::move(e.token_types)});
    }
    m.check_inputs(encoded);
    std::vector<encoding> out;
    constexpr std::size_t chunk = 64;
    for (std::size_t at = 0; at < encoded.size(); at += chunk) {
        const std::vector<encoder_input> part(encoded.begin() + static_cast<std::ptrdiff_t>(at),
                                              encoded.begin() + static_cast<std::ptrdiff_t>(std::min(encoded.size(), at + chunk)));
        auto r = m.encode(part, {.mean = o.mean});
        out.insert(out.end(), std::make_move_iterator(r.begin()), std::make_move_iterator(r.end()));
    }
    return out;
}

// The pooling a sentence-transformers folder's 1_Pooling/config.json asks for
// ("mean" or "cls"); none without that file.
inline std::optional<std::string> folder_pooling(const std::filesystem::path& dir) {
    std::error_code ec;
    const auto f = dir / "1_Pooling" / "config.json";
    if (!std::filesystem::exists(f, ec)) return std::nullopt;
    const auto j = io::read_json(f, io::config_file_limit, "the pooling config");
    auto on = [&](const char* k) { return j.is_object() && j.contains(k) && j[k].is_boolean() && j[k].get<bool>(); };
    if (on("pooling_mode_mean_tokens")) return "mean";
    if (on("pooling_mode_cls_token")) return "cls";
    throw error(f.string() + ": the pooling is neither mean nor cls (pooling_mode_mean_tokens or pooling_mode_cls_token); give --pooling");
}

// v scaled to unit length (a zero vector stays zero), as sentence-transformers'
// Normalize does.
inline void normalize(std::vector<float>& v) {
    double n = 0;
    for (const auto x : v) n += static_cast<double>(x) * x;
    n = std::sqrt(n);
    for (auto& x : v) x = static_cast<float>(x / std::max(n, 1e-12));
}

}  // namespace scribe::runtime
