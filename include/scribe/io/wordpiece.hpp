// scribe/io/wordpiece.hpp — BERT's WordPiece tokenizer: load, encode, decode, as
// Hugging Face `tokenizers` does it (BertNormalizer, BertPreTokenizer, the
// WordPiece model and decoder).
//
// The formats:
//   tokenizer.json: {"model": {"type": "WordPiece", "vocab": {token: id},
//     "unk_token", "continuing_subword_prefix" ("##"), "max_input_chars_per_word"
//     (100)}, "normalizer": {"type": "BertNormalizer", "clean_text",
//     "handle_chinese_chars", "strip_accents" (null: as lowercase), "lowercase"},
//     "pre_tokenizer": {"type": "BertPreTokenizer"}, "decoder": {"type":
//     "WordPiece", "prefix", "cleanup"}, "added_tokens": [...]}.
//   vocab.txt: one token a line, its id the line's number; the normalizer's
//     settings from tokenizer_config.json (do_lower_case, default true;
//     strip_accents; tokenize_chinese_chars), and the special tokens it names
//     (unk_token, sep_token, pad_token, cls_token, mask_token) matched in the text.
//
// encode(text), as the reference's encode(text, add_special_tokens=False):
//   1. added tokens that are not normalized are found in the raw text
//      (detail/added_tokens.hpp);
//   2. the rest is normalized: with clean_text, NUL, U+FFFD and the "other"
//      characters (categories C*, but tab, newline and return) are dropped and
//      whitespace becomes a space; with handle_chinese_chars, each CJK ideograph
//      gets a space on either side; with strip_accents, each character is
//      decomposed (NFD) and its nonspacing marks dropped; with lowercase, each is
//      lowercased (detail/bert_tables.hpp). A byte that is not well-formed UTF-8
//      reads as U+FFFD (so clean_text drops it);
//   3. added tokens that are normalized are found in the normalized text;
//   4. the rest is split on whitespace (dropped) and punctuation (ASCII
//      punctuation and categories P*: each one a word);
//   5. each word of at most max_input_chars_per_word characters is cut into the
//      longest vocabulary tokens from its start (pieces after the first spelt with
//      the continuing_subword_prefix); a word that cannot be cut, or is longer, is
//      the unknown token.
// decode(ids) joins the tokens with spaces, a "##" piece to the one before it,
// and (cleanup) "word ." to "word." and so on, as the WordPiece decoder does.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "detail/added_tokens.hpp"
#include "detail/bert_tables.hpp"
#include "detail/utf8.hpp"
#include "file.hpp"
#include "json.hpp"

namespace scribe::io {

namespace detail {

// A CJK ideograph, as BERT's normalizer counts them (the CJK Unified Ideographs
// blocks and their extensions, and the compatibility ideographs).
constexpr bool is_cjk(char32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Punctuation as BertPreTokenizer splits on it: ASCII punctuation (which holds
// symbols such as $ + < = > ^ ` | ~) and categories P*.
constexpr bool is_bert_punctuation(char32_t c) {
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126) || is_punctuation(c);
}

// Appends c with its accents stripped: NFD, less the nonspacing marks.
inline void append_stripped(std::u32string& out, char32_t c) {
    if (c >= 0xAC00 && c <= 0xD7A3) {  // a Hangul syllable: its leading, vowel and trailing jamo
        const char32_t s = c - 0xAC00;
        out += static_cast<char32_t>(0x1100 + s / (21 * 28));
        out += static_cast<char32_t>(0x1161 + (s % (21 * 28)) / 28);
        if (s % 28) out += static_cast<char32_t>(0x11A7 + s % 28);
        return;
    }
    if (const auto* m = find_mapping(stripped_mappings, c)) {
        out.append(m->to, m->count);
        return;
    }
    if (!is_nonspacing_mark(c)) out += c;
}

inline std::u32string decode_utf8(std::string_view s) {
    std::u32string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const auto ch = utf8_at(s, i);
        out += ch.valid ? ch.c : U'\uFFFD';
        i += ch.len;
    }
    return out;
}

inline std::string encode_utf8(std::u32string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const auto c : s) append_utf8(out, c);
    return out;
}

}  // namespace detail

// BERT's normalizer (BertNormalizer). strip_accents unset follows lowercase.
struct bert_normalizer {
    bool clean_text = true, handle_chinese_chars = true, lowercase = true;
    std::optional<bool> strip_accents{};

    std::string operator()(std::string_view text) const {
        std::u32string a;
        a.reserve(text.size());
        for (const auto c : detail::decode_utf8(text)) {
            const bool white = c == U'\t' || c == U'\n' || c == U'\r' || detail::is_space(c);
            if (clean_text) {
                if (c == 0 || c == 0xFFFD || (!white && detail::is_other(c))) continue;
                if (white) {
                    a += U' ';
                    continue;
                }
            }
            if (handle_chinese_chars && detail::is_cjk(c)) {
                a += U' ';
                a += c;
                a += U' ';
            } else {
                a += c;
            }
        }
        if (strip_accents.value_or(lowercase)) {
            std::u32string b;
            b.reserve(a.size());
            for (const auto c : a) detail::append_stripped(b, c);
            a = std::move(b);
        }
        if (lowercase) {
            std::u32string b;
            b.reserve(a.size());
            for (const auto c : a) {
                if (const auto* m = detail::find_mapping(detail::lowercase_mappings, c))
                    b.append(m->to, m->count);
                else
                    b += c;
            }
            a = std::move(b);
        }
        return detail::encode_utf8(a);
    }
};

class wordpiece {
public:
    // Hugging Face tokenizer.json with a WordPiece model.
    static wordpiece from_json(const nlohmann::json& j, const std::string& name) {
        try {
            return parse(j, name);
        } catch (const nlohmann::json::exception& e) {  // a shape the checks below missed
            throw error(name + ": unexpected JSON (" + e.what() + ")");
        }
    }

    // vocab.txt, with the settings of tokenizer_config.json (`config`, or null).
    static wordpiece from_vocab_txt(std::string_view text, const nlohmann::json& config, const std::string& name) {
        try {
            return parse_vocab_txt(text, config, name);
        } catch (const nlohmann::json::exception& e) {
            throw error(name + ": unexpected JSON in tokenizer_config.json (" + e.what() + ")");
        }
    }

private:
    static wordpiece parse(const nlohmann::json& j, const std::string& name) {
        if (!j.is_object()) throw error(name + ": not a JSON object");
        wordpiece t;
        t.source_ = name;
        const auto* model_field = field(j, "model");
        if (!model_field) throw error(name + ": no \"model\"");
        const auto& model = *model_field;
        if (!model.is_object() || type_of(model) != "WordPiece")
            throw error(name + ": the model is " + type_of(model) + ", not WordPiece");
        const auto* vocab = field(model, "vocab");
        if (!vocab || !vocab->is_object()) throw error(name + ": the model's vocab is not an object of token -> id");
        std::vector<std::pair<std::string, std::int64_t>> entries;
        for (auto it = vocab->begin(); it != vocab->end(); ++it) {
            if (!it.value().is_number_integer()) throw error(name + ": the id of token \"" + shown(it.key()) + "\" is not an integer");
            entries.emplace_back(it.key(), it.value().get<std::int64_t>());
        }
        t.set_vocab(entries, name);
        if (const auto* u = field(model, "unk_token")) t.unk_text_ = string_of(*u, name, "the model's unk_token");
        if (const auto* p = field(model, "continuing_subword_prefix")) t.prefix_ = string_of(*p, name, "the model's continuing_subword_prefix");
        if (const auto* m = field(model, "max_input_chars_per_word")) {
            if (!m->is_number_integer() || m->get<std::int64_t>() < 1 || m->get<std::int64_t>() > (1 << 20))
                throw error(name + ": max_input_chars_per_word must be a positive integer, got " + m->dump());
            t.max_chars_ = static_cast<std::size_t>(m->get<std::int64_t>());
        }
        if (const auto* n = field(j, "normalizer")) t.normalizer_ = read_normalizer(*n, name);
        const auto* pre = field(j, "pre_tokenizer");
        if (!pre || type_of(*pre) != "BertPreTokenizer")
            throw error(name + ": the pre-tokenizer is " + (pre ? type_of(*pre) : std::string("missing")) +
                        ", not BertPreTokenizer; other pre-tokenizers for WordPiece are not supported");
        if (const auto* dec = field(j, "decoder")) {
            if (type_of(*dec) != "WordPiece") throw error(name + ": the decoder is " + type_of(*dec) + ", not WordPiece");
            if (const auto* p = field(*dec, "prefix")) t.decode_prefix_ = string_of(*p, name, "the decoder's prefix");
            if (const auto* c = field(*dec, "cleanup"); c && c->is_boolean()) t.cleanup_ = c->get<bool>();
        } else {
            t.decode_prefix_ = t.prefix_;
        }
        if (const auto* added = field(j, "added_tokens")) t.added_.tokens = detail::added_vocabulary::parse(*added, name);
        t.finish(name);
        return t;
    }

    static wordpiece parse_vocab_txt(std::string_view text, const nlohmann::json& config, const std::string& name) {
        wordpiece t;
        t.source_ = name;
        std::vector<std::pair<std::string, std::int64_t>> entries;
        std::size_t at = 0;
        while (at < text.size()) {
            auto end = text.find('\n', at);
            if (end == std::string_view::npos) end = text.size();
            entries.emplace_back(std::string(text.substr(at, end - at)), static_cast<std::int64_t>(entries.size()));
            at = end + 1;
        }
        // A later line with the same token wins, as transformers' load_vocab has it;
        // the earlier line's id still spells the token.
        std::unordered_map<std::string, std::int64_t> last;
        for (const auto& [tok, id] : entries) last[tok] = id;
        t.tokens_.clear();
        for (const auto& [tok, id] : entries) t.tokens_.push_back(tok);
        for (const auto& [tok, id] : last) t.ids_.emplace(tok, static_cast<std::int32_t>(id));
        if (t.tokens_.empty()) throw error(name + ": the vocabulary is empty");
        if (t.tokens_.size() > detail::max_token_id) throw error(name + ": too many tokens");
        const bool cfg = config.is_object();
        auto flag = [&](const char* key, std::optional<bool> fallback) -> std::optional<bool> {
            if (!cfg || !config.contains(key) || config[key].is_null()) return fallback;
            if (!config[key].is_boolean()) throw error(name + ": tokenizer_config.json's " + key + " must be true or false");
            return config[key].get<bool>();
        };
        t.normalizer_ = bert_normalizer{.clean_text = true, .handle_chinese_chars = *flag("tokenize_chinese_chars", true),
                                        .lowercase = *flag("do_lower_case", true), .strip_accents = flag("strip_accents", std::nullopt)};
        auto special = [&](const char* key, const char* fallback) { return detail::config_token(config, key).value_or(fallback); };
        t.unk_text_ = special("unk_token", "[UNK]");
        for (const char* key : {"unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
            const auto s = special(key, key == std::string("unk_token")   ? "[UNK]"
                                        : key == std::string("sep_token") ? "[SEP]"
                                        : key == std::string("pad_token") ? "[PAD]"
                                        : key == std::string("cls_token") ? "[CLS]"
                                                                          : "[MASK]");
            if (const auto it = t.ids_.find(s); it != t.ids_.end() && !s.empty())
                t.added_.tokens.push_back({s, it->second, false, false, false, false, true});
        }
        t.finish(name);
        return t;
    }

public:
    // Token ids, as the reference's encode(text, add_special_tokens=False).
    std::vector<std::int32_t> encode(std::string_view text) const {
        std::vector<std::int32_t> out;
        for (const auto& s : added_.split_raw(text)) {
            if (s.id >= 0) {
                out.push_back(s.id);
                continue;
            }
            const auto normalized = normalizer_ ? (*normalizer_)(text.substr(s.begin, s.end - s.begin))
                                                : std::string(text.substr(s.begin, s.end - s.begin));
            for (const auto& n : added_.split_normalized(normalized)) {
                if (n.id >= 0)
                    out.push_back(n.id);
                else
                    encode_words(std::string_view(normalized).substr(n.begin, n.end - n.begin), out);
            }
        }
        return out;
    }

    // The text of ids (the added tokens marked special left out when asked).
    std::string decode(std::span<const std::int32_t> ids, bool skip_special = false) const {
        std::string out;
        bool first = true;
        for (const auto id : ids) {
            const auto& t = token(id);
            if (skip_special && special(id)) continue;
            if (!first && !decode_prefix_.empty() && t.starts_with(decode_prefix_)) {
                out += t.substr(decode_prefix_.size());
            } else {
                if (!first) out += ' ';
                out += t;
            }
            first = false;
        }
        if (!cleanup_) return out;
        for (const auto& [from, to] : std::initializer_list<std::pair<std::string_view, std::string_view>>{
                 {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"}, {" 'm", "'m"},
                 {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}}) {
            std::string next;
            for (std::size_t i = 0; i < out.size();) {
                if (out.compare(i, from.size(), from) == 0) {
                    next += to;
                    i += from.size();
                } else {
                    next += out[i++];
                }
            }
            out = std::move(next);
        }
        return out;
    }

    std::int32_t vocab_size() const { return static_cast<std::int32_t>(tokens_.size()); }
    std::optional<std::int32_t> id_of(std::string_view token) const {
        const auto it = ids_.find(std::string(token));
        return it == ids_.end() ? std::nullopt : std::optional(it->second);
    }
    const std::string& token(std::int32_t id) const {
        if (id < 0 || id >= vocab_size())
            throw error(source_ + ": token id " + std::to_string(id) + " is out of range: the vocabulary has " +
                        std::to_string(vocab_size()) + " tokens");
        return tokens_[static_cast<std::size_t>(id)];
    }
    bool special(std::int32_t id) const {
        return std::any_of(added_.tokens.begin(), added_.tokens.end(), [&](const auto& a) { return a.id == id && a.special; });
    }
    const std::optional<bert_normalizer>& normalizer() const { return normalizer_; }
    const std::string& source() const { return source_; }

private:
    wordpiece() = default;

    static const nlohmann::json* field(const nlohmann::json& o, const char* key) {
        const auto it = o.find(key);
        return it == o.end() || it->is_null() ? nullptr : &*it;
    }
    static std::string shown(std::string_view s) { return detail::printable_token(s); }
    static std::string type_of(const nlohmann::json& o) {
        if (!o.is_object()) return "(not an object)";
        const auto* t = field(o, "type");
        return t && t->is_string() ? shown(t->get<std::string>()) : "(no type)";
    }
    static std::string string_of(const nlohmann::json& v, const std::string& name, const std::string& what) {
        if (!v.is_string()) throw error(name + ": " + what + " is not a string");
        return v.get<std::string>();
    }

    static bert_normalizer read_normalizer(const nlohmann::json& n, const std::string& name) {
        if (type_of(n) != "BertNormalizer")
            throw error(name + ": the normalizer " + type_of(n) + " is not supported for WordPiece (BertNormalizer is)");
        bert_normalizer b;
        auto flag = [&](const char* key, bool fallback) {
            const auto* f = field(n, key);
            if (!f) return fallback;
            if (!f->is_boolean()) throw error(name + ": the normalizer's " + key + " is not true or false");
            return f->get<bool>();
        };
        b.clean_text = flag("clean_text", true);
        b.handle_chinese_chars = flag("handle_chinese_chars", true);
        b.lowercase = flag("lowercase", true);
        if (const auto* s = field(n, "strip_accents")) {
            if (!s->is_boolean()) throw error(name + ": the normalizer's strip_accents is not true, false or null");
            b.strip_accents = s->get<bool>();
        }
        return b;
    }

    // A vocabulary whose ids run 0..n-1 without gaps or repeats.
    void set_vocab(const std::vector<std::pair<std::string, std::int64_t>>& entries, const std::string& name) {
        if (entries.empty()) throw error(name + ": the vocabulary is empty");
        tokens_.assign(entries.size(), {});
        std::vector<bool> seen(entries.size(), false);
        for (const auto& [tok, id] : entries) {
            if (id < 0 || static_cast<std::uint64_t>(id) >= entries.size())
                throw error(name + ": token \"" + shown(tok) + "\" has id " + std::to_string(id) + ", but there are " +
                            std::to_string(entries.size()) + " tokens (ids must run 0.." + std::to_string(entries.size() - 1) + ")");
            const auto i = static_cast<std::size_t>(id);
            if (seen[i]) throw error(name + ": tokens \"" + shown(tokens_[i]) + "\" and \"" + shown(tok) + "\" both have id " + std::to_string(id));
            seen[i] = true;
            tokens_[i] = tok;
            ids_.emplace(tok, static_cast<std::int32_t>(id));
        }
    }

    void finish(const std::string& name) {
        const auto unk = ids_.find(unk_text_);
        if (unk == ids_.end())
            throw error(name + ": the unknown token \"" + shown(unk_text_) + "\" is not in the vocabulary (WordPiece needs it)");
        unk_ = unk->second;
        for (const auto& a : added_.tokens) {
            if (a.content.empty()) throw error(name + ": added token " + std::to_string(a.id) + " is empty");
            if (a.id < 0 || a.id >= vocab_size())
                throw error(name + ": added token \"" + shown(a.content) + "\" has id " + std::to_string(a.id) +
                            ", outside the vocabulary of " + std::to_string(vocab_size()));
        }
        added_.index();
    }

    // BertPreTokenizer, then WordPiece on each word.
    void encode_words(std::string_view text, std::vector<std::int32_t>& out) const {
        std::size_t word = 0, i = 0;
        auto flush = [&](std::size_t end) {
            if (end > word) wordpiece_word(text.substr(word, end - word), out);
        };
        while (i < text.size()) {
            const auto ch = detail::utf8_at(text, i);
            const char32_t c = ch.valid ? ch.c : 0xFFFD;
            if (detail::is_space(c)) {
                flush(i);
                word = i + ch.len;
            } else if (detail::is_bert_punctuation(c)) {
                flush(i);
                wordpiece_word(text.substr(i, ch.len), out);
                word = i + ch.len;
            }
            i += ch.len;
        }
        flush(text.size());
    }

    // The longest vocabulary tokens from the word's start, or the unknown token.
    void wordpiece_word(std::string_view w, std::vector<std::int32_t>& out) const {
        std::vector<std::size_t> bounds;  // where each character starts, and the end
        for (std::size_t i = 0; i < w.size(); i += detail::utf8_at(w, i).len) bounds.push_back(i);
        bounds.push_back(w.size());
        if (bounds.size() - 1 > max_chars_) {
            out.push_back(unk_);
            return;
        }
        const auto mark = out.size();
        std::string piece;
        for (std::size_t start = 0; start + 1 < bounds.size();) {
            std::size_t end = bounds.size() - 1;
            std::optional<std::int32_t> found;
            for (; end > start; --end) {
                piece.assign(start ? prefix_ : std::string());
                piece.append(w.substr(bounds[start], bounds[end] - bounds[start]));
                if (const auto it = ids_.find(piece); it != ids_.end()) {
                    found = it->second;
                    break;
                }
            }
            if (!found) {
                out.resize(mark);
                out.push_back(unk_);
                return;
            }
            out.push_back(*found);
            start = end;
        }
    }

    std::string source_;
    std::vector<std::string> tokens_;
    std::unordered_map<std::string, std::int32_t> ids_;
    std::string unk_text_ = "[UNK]", prefix_ = "##", decode_prefix_ = "##";
    std::int32_t unk_ = 0;
    std::size_t max_chars_ = 100;
    bool cleanup_ = true;
    std::optional<bert_normalizer> normalizer_;
    detail::added_vocabulary added_;
};

}  // namespace scribe::io
