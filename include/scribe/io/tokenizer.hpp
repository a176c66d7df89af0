// scribe/io/tokenizer.hpp — GPT-2-style byte-level BPE: load, encode, decode.
//
// The formats:
//   tokenizer.json (Hugging Face `tokenizers`): {"model": {"type": "BPE", "vocab":
//     {token: id}, "merges": [...]}, "added_tokens": [{"id", "content", "lstrip",
//     "rstrip", "single_word", "normalized", "special"}], "pre_tokenizer":
//     {"type": "ByteLevel", "add_prefix_space", "use_regex"}, "decoder": {"type":
//     "ByteLevel"}, "normalizer": null, ...}. A merge is the string "a b" or (newer
//     `tokenizers`) the array ["a", "b"]; its rank is its place in the list.
//   vocab.json + merges.txt (GPT-2's two files): {token: id}, and one merge "a b"
//     a line, lines starting "#version" skipped. The pre-tokenizer is GPT-2's (no
//     prefix space); <|endoftext|>, where the vocabulary has it, is a special token
//     (as transformers' GPT2Tokenizer treats it).
//
// Tokens are strings over the byte-level alphabet: each of the 256 bytes is one
// printable character (GPT-2's bytes_to_unicode: '!'..'~', '¡'..'¬', '®'..'ÿ' stand
// for themselves, the other 68 bytes for U+0100 onwards; a space is 'Ġ').
//
// encode(text), as the reference's encode(text, add_special_tokens=False):
//   1. added tokens (e.g. <|endoftext|>) are found in the text, leftmost-longest
//      first, and become their ids (their lstrip/rstrip/single_word flags honoured;
//      tokens with normalized=false are found before those with normalized=true);
//   2. each stretch of text between them (with a space put in front when
//      add_prefix_space is set and it does not start with one) is split by GPT-2's
//      pattern  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      implemented by hand over code points (detail/unicode_tables.hpp has the
//      classes). A byte that is not part of valid UTF-8 counts as one character of
//      none of the classes (so it lands in [^\s\p{L}\p{N}]);
//   3. each piece's bytes start as one symbol a byte, and the merges are applied
//      lowest rank first (the leftmost pair among equal ranks), as `tokenizers`
//      does with a priority queue: O(n log n) in the piece's length.
// decode(ids) concatenates the tokens' bytes (a token whose characters are not all
// in the byte-level alphabet, e.g. an added token, stands for its own UTF-8). The
// result is raw bytes: a cut through a multi-byte character is not replaced by
// U+FFFD as the reference's decode does. decode(encode(s)) == s for every s.
//
// Every file is validated when loaded: a vocabulary of string -> integer id whose
// ids run 0..n-1 with neither duplicates nor gaps (together with the added tokens),
// merges of two vocabulary tokens whose concatenation is in the vocabulary, and a
// configuration this class implements (BPE without dropout or subword affixes,
// ByteLevel pre-tokenizer and decoder, no normalizer). Errors name the file.
// Not supported, and refused: normalizers, other pre-tokenizers (e.g. a Split with
// another pattern, as Llama 3 and Qwen use), byte_fallback, dropout.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <optional>
#include <queue>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "file.hpp"
#include "json.hpp"

#include "../core/error.hpp"
#include "detail/added_tokens.hpp"
#include "detail/pipeline.hpp"
#include "detail/post_processor.hpp"
#include "detail/pretokenizers.hpp"
#include "detail/unicode_tables.hpp"
#include "detail/utf8.hpp"

namespace scribe::io {

namespace detail {

inline std::string read_text_file(const std::filesystem::path& path) {
    return read_text(path, tokenizer_file_limit, "the tokenizer file");
}

}  // namespace detail

class tokenizer {
public:
    // An added token (tokenizer.json's added_tokens): found in the text before BPE.
    using added_token = detail::added_token;

    // Hugging Face tokenizer.json (model BPE, ByteLevel pre-tokenizer and decoder).
    static tokenizer from_json(const std::filesystem::path& tokenizer_json) {
        return parse_json(detail::read_text_file(tokenizer_json), tokenizer_json.string());
    }
    // GPT-2's vocab.json + merges.txt.
    static tokenizer from_vocab_merges(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt) {
        return parse_vocab_merges(detail::read_text_file(vocab_json), detail::read_text_file(merges_txt),
                                  vocab_json.string(), merges_txt.string());
    }
    // A model folder: tokenizer.json if it has one, else vocab.json + merges.txt.
    static tokenizer from_folder(const std::filesystem::path& dir) {
        std::error_code ec;
        if (!std::filesystem::is_directory(dir, ec)) throw error(dir.string() + ": not a folder");
        // A dangling symlink is a file that is there and broken, not one to fall back from.
        auto present = [&](const std::filesystem::path& p) { return std::filesystem::exists(p, ec) || std::filesystem::is_symlink(p, ec); };
        auto with_config = [&](tokenizer t) {
            if (present(dir / "tokenizer_config.json"))
                t.read_config(read_json(dir / "tokenizer_config.json", tokenizer_file_limit, "the tokenizer config"),
                              (dir / "tokenizer_config.json").string());
            return t;
        };
        if (present(dir / "tokenizer.json")) return with_config(from_json(dir / "tokenizer.json"));
        const bool vocab = present(dir / "vocab.json"), merges = present(dir / "merges.txt");
        if (vocab && merges) return with_config(from_vocab_merges(dir / "vocab.json", dir / "merges.txt"));
        if (vocab) throw error(dir.string() + ": no tokenizer.json, and vocab.json without merges.txt");
        if (merges) throw error(dir.string() + ": no tokenizer.json, and merges.txt without vocab.json");
        throw error(dir.string() + ": no tokenizer (neither tokenizer.json nor vocab.json + merges.txt)");
    }

    // The same from the files' contents; `name` (and the two names) appear in errors.
    static tokenizer parse_json(std::string_view text, const std::string& name = "tokenizer.json") {
        const auto j = io::parse_json(text, name);
        try {
            return from_tokenizer_json(j, name);
        } catch (const nlohmann::json::exception& e) {  // a shape the checks below missed
            throw error(name + ": unexpected JSON (" + e.what() + ")");
        }
    }
    static tokenizer parse_vocab_merges(std::string_view vocab_json, std::string_view merges_txt,
                                        const std::string& vocab_name = "vocab.json",
                                        const std::string& merges_name = "merges.txt") {
        const auto v = io::parse_json(vocab_json, vocab_name);
        tokenizer t;
        t.source_ = vocab_name + " + " + merges_name;
        try {
            t.read_vocab(v, vocab_name, "the file");
        } catch (const nlohmann::json::exception& e) {
            throw error(vocab_name + ": unexpected JSON (" + e.what() + ")");
        }
        std::vector<merge_text> merges;
        std::size_t line_no = 0, at = 0;
        while (at < merges_txt.size()) {  // lines as Rust's BufRead::lines: "\n" or "\r\n" ends one
            auto end = merges_txt.find('\n', at);
            if (end == std::string_view::npos) end = merges_txt.size();
            auto line = merges_txt.substr(at, end - at);
            at = end + 1;
            ++line_no;
            if (line.ends_with('\r')) line.remove_suffix(1);
            if (line.starts_with("#version")) continue;
            const auto where = merges_name + ": line " + std::to_string(line_no);
            const auto space = line.find(' ');
            if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos || space == 0 ||
                space + 1 == line.size())
                throw error(where + " is not a merge (two tokens separated by one space)");
            merges.push_back({std::string(line.substr(0, space)), std::string(line.substr(space + 1)), where});
        }
        t.build_merges(merges);
        t.decoders_.push_back({detail::decoder_step::kind::byte_level, {}, {}});
        if (const auto eos = t.vocab_.find(std::string(eos_text)); eos != t.vocab_.end())
            t.added_.tokens.push_back({std::string(eos_text), eos->second, false, false, false, false, true});
        t.finish(vocab_name);
        return t;
    }

    // Token ids, as the reference's encode(text, add_special_tokens=False).
    std::vector<std::int32_t> encode(std::string_view utf8) const {
        std::vector<std::int32_t> out;
        std::unordered_map<std::string, std::vector<std::int32_t>> cache;  // this call's words
        auto model = [&](std::string_view word) {
            if (word.empty()) return;
            if (word.size() > 64) return bpe(word, out);  // long words are rare: no point keeping them
            auto [it, fresh] = cache.try_emplace(std::string(word));
            if (fresh) bpe(word, it->second);
            out.insert(out.end(), it->second.begin(), it->second.end());
        };
        std::string normalized, prefixed;
        for (const auto& seg : added_.split(utf8)) {
            if (seg.id >= 0) {
                out.push_back(seg.id);
                continue;
            }
            std::string_view text = utf8.substr(seg.begin, seg.end - seg.begin);
            if (text.empty()) continue;
            if (!normalizers_.empty()) {
                normalized = detail::normalize(text, normalizers_);
                text = normalized;
            }
            if (metaspace_) {
                prefixed = metaspace_->apply(text, seg.begin == 0);
                for (const auto piece : metaspace_->pieces(prefixed)) model(piece);
                continue;
            }
            if (add_prefix_space_ && text.front() != ' ') {
                prefixed.assign(1, ' ');
                prefixed.append(text);
                text = prefixed;
            }
            if (split_ == split::none) {
                model(text);
                continue;
            }
            const auto match = split_ == split::gpt2 ? &detail::gpt2_match_at : &detail::llama3_match_at;
            for (std::size_t i = 0; i < text.size();) {
                const auto n = match(text, i);
                model(text.substr(i, n));
                i += n;
            }
        }
        return out;
    }

    // Token ids with the special tokens the tokenizer puts around a text, as the
    // reference's encode(text) (add_special_tokens=True): BOS for Llama's "<s> $A",
    // nothing for GPT-2's. The template is tokenizer.json's post-processor, or the
    // one tokenizer_config.json's add_bos_token / add_eos_token make.
    std::vector<std::int32_t> encode_with_specials(std::string_view utf8) const {
        if (!template_) return encode(utf8);
        std::vector<std::int32_t> out;
        for (const auto& item : template_->single) {
            if (item.sequence) {
                const auto ids = encode(utf8);
                out.insert(out.end(), ids.begin(), ids.end());
            } else {
                out.insert(out.end(), item.ids.begin(), item.ids.end());
            }
        }
        return out;
    }
    // The ids encode_with_specials puts before and after the text.
    std::vector<std::int32_t> special_prefix() const { return template_side(true); }
    std::vector<std::int32_t> special_suffix() const { return template_side(false); }

    // The bytes the ids stand for, through the tokenizer's decoders (ByteLevel, or
    // SentencePiece's chain). Bytes that are not well-formed UTF-8 (a token that
    // cuts a character) are kept, so that tokens decoded one at a time join back
    // into the text; decode_text() gives the reference's string, with U+FFFD there.
    std::string decode(std::span<const std::int32_t> ids) const { return decode_with(ids, false); }
    // As the reference's decode(ids, skip_special_tokens=False).
    std::string decode_text(std::span<const std::int32_t> ids) const { return decode_with(ids, true); }

    std::int32_t vocab_size() const { return static_cast<std::int32_t>(tokens_.size()); }
    std::optional<std::int32_t> id_of(std::string_view token) const {
        const auto it = ids_.find(std::string(token));
        if (it == ids_.end()) return std::nullopt;
        return it->second;
    }
    // The token's spelling, in the byte-level alphabet ("Ġthe").
    const std::string& token(std::int32_t id) const { return tokens_[index(id)]; }
    // The end-of-text token: tokenizer_config.json's eos_token, else <|endoftext|>,
    // if the vocabulary has it.
    std::optional<std::int32_t> eos_id() const { return eos_token_ ? id_of(*eos_token_) : id_of(eos_text); }
    // The tokens generation stops at: the model's (`model_eos`: its
    // generation_config.json's eos_token_id, else config.json's) and this
    // tokenizer's eos_token, each once, in that order.
    std::vector<std::int32_t> end_tokens(std::vector<std::int32_t> model_eos) const {
        if (const auto e = eos_id(); e && std::find(model_eos.begin(), model_eos.end(), *e) == model_eos.end()) model_eos.push_back(*e);
        return model_eos;
    }
    // The text `made` adds after `prompt`: both decoded together, less the
    // prompt's text (a SentencePiece decoder drops the space before a text's
    // first word, which a word after the prompt keeps); `made` alone where the
    // joint text does not begin with the prompt's. As decode() gives bytes, or
    // with as_text as decode_text() gives text.
    std::string continuation(std::span<const std::int32_t> prompt, std::span<const std::int32_t> made, bool as_text = false) const {
        std::vector<std::int32_t> all(prompt.begin(), prompt.end());
        all.insert(all.end(), made.begin(), made.end());
        const auto before = decode_with(prompt, as_text), text = decode_with(all, as_text);
        return text.starts_with(before) ? text.substr(before.size()) : decode_with(made, as_text);
    }
    // The beginning-of-text token tokenizer_config.json names, if any.
    std::optional<std::int32_t> bos_id() const { return bos_token_ ? id_of(*bos_token_) : std::nullopt; }
    const std::vector<added_token>& added_tokens() const { return added_.tokens; }
    // Makes a vocabulary token special: found whole in the text before BPE (the
    // special tokens a tokenizer_config.json names for the classic files, such as
    // RoBERTa's <s> and <mask>). False when the vocabulary has no such token.
    bool add_special(const std::string& content) {
        const auto it = vocab_.find(content);
        if (it == vocab_.end() || content.empty()) return false;
        for (const auto& a : added_.tokens)
            if (a.content == content) return true;
        added_.tokens.push_back({content, it->second, false, false, false, false, true});
        added_.index();
        return true;
    }
    // The pieces GPT-2's pattern splits a text into (before byte-level BPE).
    static std::vector<std::string_view> pre_tokenize(std::string_view text) { return detail::split_by(text, detail::gpt2_match_at); }
    // The file(s) it was read from.
    const std::string& source() const { return source_; }

    static constexpr std::string_view eos_text = "<|endoftext|>";

private:
    struct merge_text {
        std::string left, right, where;
    };
    struct merge_rule {
        std::int32_t rank, result;
    };

    tokenizer() = default;

    static std::string printable(std::string_view s) { return detail::printable_token(s); }

    // What a JSON value is, in words (never the value itself, which may be huge).
    static std::string describe(const nlohmann::json& v) {
        if (v.is_array()) return "an array of " + std::to_string(v.size());
        if (v.is_object()) return "an object";
        if (v.is_string()) return "the string \"" + printable(v.get_ref<const std::string&>()) + "\"";
        if (v.is_null()) return "null";
        return v.dump();  // a number or a boolean
    }

    static std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
        return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
    }

    std::size_t index(std::int32_t id) const {
        if (id < 0 || id >= vocab_size())
            throw error(source_ + ": token id " + std::to_string(id) + " is out of range: the vocabulary has " +
                        std::to_string(vocab_size()) + " tokens");
        return static_cast<std::size_t>(id);
    }

    // The model's vocabulary: a JSON object of token -> id.
    void read_vocab(const nlohmann::json& v, const std::string& name, const std::string& what) {
        if (!v.is_object()) throw error(name + ": " + what + " is not a JSON object of token -> id");
        for (auto it = v.begin(); it != v.end(); ++it) {
            const auto& id = it.value();
            const auto tok = "token \"" + printable(it.key()) + "\"";
            if (!id.is_number_integer()) throw error(name + ": the id of " + tok + " is not an integer");
            if (id.is_number_unsigned() ? id.get<std::uint64_t>() > max_id : id.get<std::int64_t>() < 0)
                throw error(name + ": the id of " + tok + " is " + id.dump() + ", outside 0.." + std::to_string(max_id));
            vocab_.emplace(it.key(), static_cast<std::int32_t>(id.get<std::int64_t>()));
        }
    }

    void build_merges(const std::vector<merge_text>& merges) {
        std::int32_t rank = 0;
        for (const auto& m : merges) {
            const auto a = vocab_.find(m.left), b = vocab_.find(m.right);
            if (a == vocab_.end()) throw error(m.where + ": the merge's token \"" + printable(m.left) + "\" is not in the vocabulary");
            if (b == vocab_.end()) throw error(m.where + ": the merge's token \"" + printable(m.right) + "\" is not in the vocabulary");
            const auto r = vocab_.find(m.left + m.right);
            if (r == vocab_.end())
                throw error(m.where + ": the merge's result \"" + printable(m.left + m.right) + "\" is not in the vocabulary");
            // A repeated merge takes its later rank, as in `tokenizers` (a hash map
            // filled in order).
            merges_[pair_key(a->second, b->second)] = {rank++, r->second};
        }
    }

    // Ids, added tokens and the byte-level tables, once the vocabulary and merges are in.
    void finish(const std::string& name) {
        std::vector<const std::string*> by_id(vocab_.size() + added_.tokens.size(), nullptr);
        auto place = [&](const std::string& tok, std::int32_t id) {
            const auto i = static_cast<std::size_t>(id);
            if (i >= by_id.size())
                throw error(name + ": token \"" + printable(tok) + "\" has id " + std::to_string(id) + ", but there are " +
                            std::to_string(by_id.size()) + " tokens (ids must run 0.." + std::to_string(by_id.size() - 1) +
                            " without gaps)");
            if (by_id[i] && *by_id[i] != tok)
                throw error(name + ": tokens \"" + printable(*by_id[i]) + "\" and \"" + printable(tok) + "\" both have id " +
                            std::to_string(id));
            by_id[i] = &tok;
        };
        // In order of id, then token, so that messages do not depend on hashing.
        std::vector<std::pair<std::int32_t, const std::string*>> order;
        order.reserve(vocab_.size());
        for (const auto& [tok, id] : vocab_) order.emplace_back(id, &tok);
        std::sort(order.begin(), order.end(), [](const auto& x, const auto& y) { return x.first != y.first ? x.first < y.first : *x.second < *y.second; });
        for (const auto& [id, tok] : order) place(*tok, id);
        std::size_t extra = 0;
        for (const auto& a : added_.tokens) {
            const auto v = vocab_.find(a.content);
            if (v != vocab_.end()) {
                if (v->second != a.id)
                    throw error(name + ": added token \"" + printable(a.content) + "\" has id " + std::to_string(a.id) +
                                ", but the vocabulary gives it " + std::to_string(v->second));
            } else {
                ++extra;
                place(a.content, a.id);
            }
        }
        by_id.resize(vocab_.size() + extra);
        for (std::size_t i = 0; i < by_id.size(); ++i)
            if (!by_id[i])
                throw error(name + ": no token has id " + std::to_string(i) + " (ids must run 0.." + std::to_string(by_id.size() - 1) +
                            " without gaps)");
        for (const auto& a : added_.tokens) {
            if (a.content.empty()) throw error(name + ": added token " + std::to_string(a.id) + " is empty");
            for (const auto& b : added_.tokens)
                if (&a != &b && a.content == b.content && a.id != b.id)
                    throw error(name + ": added token \"" + printable(a.content) + "\" appears with ids " + std::to_string(a.id) +
                                " and " + std::to_string(b.id));
        }
        tokens_.reserve(by_id.size());
        for (const auto* t : by_id) {
            tokens_.push_back(*t);
            ids_.emplace(*t, static_cast<std::int32_t>(tokens_.size() - 1));
        }
        byte_id_.fill(-1);
        for (std::size_t b = 0; b < 256; ++b)
            if (const auto it = vocab_.find(byte_level_ ? detail::byte_spelling()[b] : detail::byte_token_text(static_cast<int>(b)));
                it != vocab_.end())
                byte_id_[b] = it->second;
        added_.index();
    }

    // The bytes a token stands for: its characters through the byte-level alphabet,
    // or, when one of them is not in it, its own UTF-8 (the reference's ByteLevel
    // decoder does the same).
    static std::string token_bytes(const std::string& t) {
        static const auto inverse = [] {
            std::array<int, 324> inv;
            inv.fill(-1);
            for (int b = 0; b < 256; ++b) inv[detail::byte_to_char()[static_cast<std::size_t>(b)]] = b;
            return inv;
        }();
        std::string out;
        for (std::size_t i = 0; i < t.size();) {
            const auto ch = detail::utf8_at(t, i);
            if (!ch.valid || ch.c >= inverse.size() || inverse[ch.c] < 0) return t;
            out += static_cast<char>(inverse[ch.c]);
            i += ch.len;
        }
        return out;
    }

    static tokenizer from_tokenizer_json(const nlohmann::json& j, const std::string& name) {
        if (!j.is_object()) throw error(name + ": not a JSON object");
        tokenizer t;
        t.source_ = name;
        auto field = [&](const nlohmann::json& o, const char* key) -> const nlohmann::json* {
            const auto it = o.find(key);
            return it == o.end() || it->is_null() ? nullptr : &*it;
        };
        auto flag = [&](const nlohmann::json& o, const char* key, bool fallback, const std::string& what) {
            const auto* f = field(o, key);
            if (!f) return fallback;
            if (!f->is_boolean()) throw error(name + ": " + what + " `" + key + "` is not true or false");
            return f->get<bool>();
        };

        const auto* model = field(j, "model");
        if (!model) throw error(name + ": no \"model\"");
        if (!model->is_object()) throw error(name + ": \"model\" is not an object");
        if (const auto* ty = field(*model, "type"); ty && (!ty->is_string() || ty->get<std::string>() != "BPE"))
            throw error(name + ": the model is " + (ty->is_string() ? "\"" + printable(ty->get<std::string>()) + "\"" : std::string("of no type")) +
                        ", not BPE");
        if (const auto* d = field(*model, "dropout"); d && (!d->is_number() || d->get<double>() != 0.0))
            throw error(name + ": the model has BPE dropout (" + describe(*d) +
                        "), which is random and not supported");
        for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
            if (const auto* s = field(*model, key); s && (!s->is_string() || !s->get<std::string>().empty()))
                throw error(name + ": the model has a " + key + " (" + describe(*s) +
                            "), which byte-level BPE does not use");
        t.byte_fallback_ = flag(*model, "byte_fallback", false, "the model's");
        t.ignore_merges_ = flag(*model, "ignore_merges", false, "the model's");
        t.fuse_unk_ = flag(*model, "fuse_unk", false, "the model's");
        std::optional<std::string> unk;
        if (const auto* u = field(*model, "unk_token")) {
            if (!u->is_string()) throw error(name + ": the model's unk_token is not a string");
            unk = u->get<std::string>();
        }

        const auto* vocab = field(*model, "vocab");
        if (!vocab) throw error(name + ": the model has no vocab");
        t.read_vocab(*vocab, name, "the model's vocab");
        if (unk)
            if (const auto it = t.vocab_.find(*unk); it != t.vocab_.end()) t.unk_id_ = it->second;

        const auto* merges = field(*model, "merges");
        if (!merges) throw error(name + ": the model has no merges");
        if (!merges->is_array()) throw error(name + ": the model's merges are not an array");
        std::vector<merge_text> ms;
        ms.reserve(merges->size());
        for (std::size_t i = 0; i < merges->size(); ++i) {
            const auto& m = (*merges)[i];
            const auto where = name + ": merge " + std::to_string(i);
            if (m.is_string()) {
                const auto& s = m.get_ref<const std::string&>();
                const auto space = s.find(' ');
                if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos || space == 0 || space + 1 == s.size())
                    throw error(where + " is not two tokens separated by one space");
                ms.push_back({s.substr(0, space), s.substr(space + 1), where});
            } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
                ms.push_back({m[0].get<std::string>(), m[1].get<std::string>(), where});
            } else {
                throw error(where + " is neither \"a b\" nor [\"a\", \"b\"]: it is " + describe(m));
            }
        }
        t.build_merges(ms);

        if (const auto* norm = field(j, "normalizer")) detail::read_normalizer(*norm, name, t.normalizers_);
        const auto* pre = field(j, "pre_tokenizer");
        t.read_pre_tokenizer(pre, name, flag);
        if (t.byte_level_ && t.byte_fallback_)
            throw error(name + ": the model has byte_fallback, which byte-level BPE does not use");
        const auto* dec = field(j, "decoder");
        if (!dec) throw error(name + ": the decoder is missing (ByteLevel, or SentencePiece's Replace/ByteFallback/Fuse/Strip or Metaspace)");
        detail::read_decoder(*dec, name, t.decoders_);

        if (const auto* added = field(j, "added_tokens")) t.added_.tokens = detail::added_vocabulary::parse(*added, name);
        t.finish(name);
        if (const auto* post = field(j, "post_processor")) t.template_ = detail::read_post_processor(*post, name, t.vocab_size());
        return t;
    }

    // The pre-tokenizer: ByteLevel (GPT-2's pattern or none), a Split by GPT-2's or
    // Llama 3's pattern followed by ByteLevel without its pattern, Metaspace, or none
    // (the text between added tokens is one piece). The first two read the text as
    // bytes in the byte-level alphabet; the others as characters.
    template <class Flag>
    void read_pre_tokenizer(const nlohmann::json* pre, const std::string& name, Flag&& flag) {
        byte_level_ = false;
        split_ = split::none;
        if (!pre) return;
        const auto type = detail::component_type(*pre);
        const auto where = name + ": the pre-tokenizer";
        auto byte_level = [&](const nlohmann::json& b, bool pattern_before) {
            byte_level_ = true;
            add_prefix_space_ = flag(b, "add_prefix_space", true, "the pre-tokenizer's");
            const bool regex = flag(b, "use_regex", true, "the pre-tokenizer's");
            if (pattern_before && regex)
                throw error(where + " splits twice: a Split then a ByteLevel with use_regex (not supported)");
            if (!pattern_before) split_ = regex ? split::gpt2 : split::none;
        };
        if (type == "ByteLevel") return byte_level(*pre, false);
        if (type == "Metaspace") {
            metaspace_ = detail::read_metaspace(*pre, where + " Metaspace");
            return;
        }
        const auto it = pre->find("pretokenizers");
        if (type == "Sequence" && it != pre->end() && it->is_array() && it->size() == 2 &&
            detail::component_type((*it)[0]) == "Split" && detail::component_type((*it)[1]) == "ByteLevel") {
            const auto& sp = (*it)[0];
            const auto pat = sp.find("pattern");
            const auto regex = pat != sp.end() && pat->is_object() && pat->contains("Regex") && (*pat)["Regex"].is_string()
                                   ? (*pat)["Regex"].get<std::string>()
                                   : std::string();
            if (regex == detail::llama3_pattern) split_ = split::llama3;
            else if (regex == detail::gpt2_pattern) split_ = split::gpt2;
            else
                throw error(where + " Split's pattern " + (regex.empty() ? std::string("is not a Regex") : "\"" + printable(regex) + "\"") +
                            " is not supported (only GPT-2's and Llama 3's patterns are)");
            const auto behavior = sp.find("behavior");
            const auto invert = sp.find("invert");
            if (behavior == sp.end() || *behavior != "Isolated" || (invert != sp.end() && *invert != false))
                throw error(where + " Split is not \"Isolated\" without invert (not supported)");
            return byte_level((*it)[1], true);
        }
        throw error(where + " is " + type +
                    ", which is not supported (Scribe's BPE tokenizers read ByteLevel, Metaspace, a Sequence of a Split by "
                    "GPT-2's or Llama 3's pattern and ByteLevel, or none)");
    }

    // tokenizer_config.json: the bos and eos tokens it names, and, where it sets
    // add_bos_token or add_eos_token (Llama's), the template they make ([BOS] $A
    // [EOS]), which replaces the post-processor's as transformers' LlamaTokenizerFast
    // does.
    void read_config(const nlohmann::json& config, const std::string& name) {
        if (!config.is_object()) throw error(name + ": not a JSON object");
        bos_token_ = detail::config_token(config, "bos_token");
        eos_token_ = detail::config_token(config, "eos_token");
        auto flag = [&](const char* key) -> std::optional<bool> {
            const auto it = config.find(key);
            if (it == config.end() || it->is_null()) return std::nullopt;
            if (!it->is_boolean()) throw error(name + ": `" + key + "` is not true or false");
            return it->get<bool>();
        };
        const auto add_bos = flag("add_bos_token"), add_eos = flag("add_eos_token");
        if (!add_bos && !add_eos) return;
        auto special = [&](const std::optional<std::string>& token, const char* key) {
            if (!token) throw error(name + ": `add_" + std::string(key) + "` is set but `" + key + "` names no token");
            const auto id = id_of(*token);
            if (!id) throw error(name + ": the " + key + " \"" + printable(*token) + "\" is not in the tokenizer's vocabulary");
            return *id;
        };
        detail::templates t;
        if (add_bos.value_or(false)) t.single.push_back({false, 0, {special(bos_token_, "bos_token")}, 0});
        t.single.push_back({true, 0, {}, 0});
        if (add_eos.value_or(false)) t.single.push_back({false, 0, {special(eos_token_, "eos_token")}, 0});
        template_ = std::move(t);
    }

    std::vector<std::int32_t> template_side(bool before) const {
        std::vector<std::int32_t> out;
        if (!template_) return out;
        bool seen = false;
        for (const auto& item : template_->single) {
            if (item.sequence) seen = true;
            else if (seen != before) out.insert(out.end(), item.ids.begin(), item.ids.end());
        }
        return out;
    }

    std::string decode_with(std::span<const std::int32_t> ids, bool lossy) const {
        std::vector<std::string> pieces;
        pieces.reserve(ids.size());
        for (const auto id : ids)  // ids a padded vocabulary holds beyond the tokenizer's spell nothing
            if (id < 0) (void)index(id);
        for (const auto id : ids)
            if (id < vocab_size()) pieces.push_back(tokens_[index(id)]);
        return detail::run_decoders(std::move(pieces), decoders_, lossy, &token_bytes);
    }

    // The symbols BPE starts from, appended to s: a byte-level model's bytes, or
    // a character model's characters, where a character not in the vocabulary is
    // its bytes' <0xNN> tokens (byte_fallback, when it has them all) or unk_token
    // (consecutive ones fused into one with fuse_unk). A byte that is not part of
    // well-formed UTF-8 counts as a character not in the vocabulary.
    template <class Symbol>
    void initial_symbols(std::string_view word, std::vector<Symbol>& s) const {
        auto push = [&](std::int32_t id) {
            const auto n = static_cast<std::int32_t>(s.size());
            s.push_back({id, n - 1, -1, true});
            if (n > 0) s[static_cast<std::size_t>(n - 1)].next = n;
        };
        auto unknown = [&](std::string_view what) {
            if (!unk_id_) throw error(source_ + ": the vocabulary has no token for " + std::string(what) + " and no unk_token");
            if (fuse_unk_ && !s.empty() && s.back().id == *unk_id_) return;
            push(*unk_id_);
        };
        static const char* hex = "0123456789ABCDEF";
        if (byte_level_) {
            for (const char ch : word) {
                const auto b = static_cast<unsigned char>(ch);
                if (byte_id_[b] >= 0) push(byte_id_[b]);
                else unknown("the byte 0x" + std::string{static_cast<char>(std::tolower(hex[b >> 4])), static_cast<char>(std::tolower(hex[b & 15]))} +
                             " (\"" + detail::byte_spelling()[b] + "\")");
            }
            return;
        }
        for (std::size_t i = 0; i < word.size();) {
            const auto ch = detail::utf8_at(word, i);
            const auto text = word.substr(i, ch.len);
            i += ch.len;
            if (ch.valid)
                if (const auto it = vocab_.find(std::string(text)); it != vocab_.end()) {
                    push(it->second);
                    continue;
                }
            if (byte_fallback_) {
                bool all = true;
                for (const char c : text) all = all && byte_id_[static_cast<unsigned char>(c)] >= 0;
                if (all) {
                    for (const char c : text) push(byte_id_[static_cast<unsigned char>(c)]);
                    continue;
                }
            }
            unknown(ch.valid ? "the character \"" + printable(text) + "\"" : "the byte 0x" + std::string{hex[ch.c >> 4], hex[ch.c & 15]});
        }
    }

    // BPE of one piece, appended to `out`.
    void bpe(std::string_view word, std::vector<std::int32_t>& out) const {
        if (ignore_merges_) {
            std::string spelled;
            if (byte_level_)
                for (const char c : word) spelled += detail::byte_spelling()[static_cast<unsigned char>(c)];
            else
                spelled = word;
            if (const auto it = vocab_.find(spelled); it != vocab_.end()) {
                out.push_back(it->second);
                return;
            }
        }
        struct symbol {
            std::int32_t id;
            std::int32_t prev, next;  // -1: none
            bool alive;
        };
        std::vector<symbol> s;
        s.reserve(word.size());
        initial_symbols(word, s);
        struct candidate {
            std::int32_t rank, pos, result;
            bool operator>(const candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
        };
        std::priority_queue<candidate, std::vector<candidate>, std::greater<>> queue;
        auto consider = [&](std::int32_t pos) {
            const auto& a = s[static_cast<std::size_t>(pos)];
            if (a.next < 0) return;
            const auto it = merges_.find(pair_key(a.id, s[static_cast<std::size_t>(a.next)].id));
            if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.result});
        };
        for (std::int32_t p = 0; p + 1 < static_cast<std::int32_t>(s.size()); ++p) consider(p);
        while (!queue.empty()) {
            const auto top = queue.top();
            queue.pop();
            auto& a = s[static_cast<std::size_t>(top.pos)];
            if (!a.alive || a.next < 0) continue;
            auto& b = s[static_cast<std::size_t>(a.next)];
            // A stale entry: the pair at this place has changed since it was queued.
            const auto it = merges_.find(pair_key(a.id, b.id));
            if (it == merges_.end() || it->second.result != top.result) continue;
            a.id = top.result;
            b.alive = false;
            a.next = b.next;
            if (b.next >= 0) s[static_cast<std::size_t>(b.next)].prev = top.pos;
            if (a.prev >= 0) consider(a.prev);
            consider(top.pos);
        }
        for (const auto& x : s)
            if (x.alive) out.push_back(x.id);
    }

    static constexpr std::uint64_t max_id = detail::max_token_id;

    std::string source_;
    std::unordered_map<std::string, std::int32_t> vocab_;  // the model's vocabulary
    std::unordered_map<std::uint64_t, merge_rule> merges_;  // (left id, right id) -> rank, result
    detail::added_vocabulary added_;
    std::vector<std::string> tokens_;          // by id, byte-level spelling
    std::unordered_map<std::string, std::int32_t> ids_;  // every token, added ones too
    std::array<std::int32_t, 256> byte_id_{};  // a byte's token: its byte-level spelling, or <0xNN>
    std::optional<std::int32_t> unk_id_;
    // The pipeline: normalizers, how the text is cut (the byte-level alphabet or
    // characters, by which pattern, or Metaspace), the model's options, the decoders.
    enum class split { none, gpt2, llama3 };
    std::vector<detail::normalizer_step> normalizers_;
    bool byte_level_ = true;
    split split_ = split::gpt2;
    std::optional<detail::metaspace> metaspace_;
    std::vector<detail::decoder_step> decoders_;
    std::optional<detail::templates> template_;  // what encode_with_specials puts around the text
    std::optional<std::string> bos_token_, eos_token_;  // as tokenizer_config.json names them
    bool add_prefix_space_ = false, ignore_merges_ = false, fuse_unk_ = false, byte_fallback_ = false;
};

}  // namespace scribe::io
