// scribe/io/encoder_tokenizer.hpp — an encoder's tokenizer: a text, or a pair of
// texts, to the ids and token types the model reads, with the special tokens of
// the tokenizer's template and truncation, as Hugging Face's
// tokenizer(text, pair, truncation=True, max_length=...) gives them.
//
// The model is WordPiece (io/wordpiece.hpp: BERT, DistilBERT; tokenizer.json or
// vocab.txt) or byte-level BPE (io/tokenizer.hpp: RoBERTa; tokenizer.json or
// vocab.json + merges.txt). The template is tokenizer.json's post_processor:
//   TemplateProcessing  its "single" and "pair" lists of special tokens and
//                       sequences, each with a type id;
//   BertProcessing      [CLS] A [SEP] and [CLS] A [SEP] B [SEP], B's part type 1;
//   RobertaProcessing   <s> A </s> and <s> A </s> </s> B </s>, all type 0;
// or, without one (vocab.txt, vocab.json), BERT's or RoBERTa's from the special
// tokens tokenizer_config.json names.
//
// Truncation is tokenizers' "longest_first": the special tokens are kept, and the
// room left is shared as its truncate_pair shares it (the shorter input whole if it
// fits in half, else both cut to half each). max_length is the caller's (the
// model's positions), capped by tokenizer_config.json's model_max_length.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer.hpp"
#include "wordpiece.hpp"

namespace scribe::io {

// What a text (or a pair) becomes.
struct encoded_text {
    std::vector<std::int32_t> ids, token_types;
    std::size_t dropped = 0;  // tokens truncation removed (0: none)
};

class encoder_tokenizer {
public:
    // One item of a template: a special token's ids, or the first (0) or second
    // (1) input's; each with the type id its tokens get.
    struct item {
        bool sequence = false;
        int input = 0;
        std::vector<std::int32_t> ids;
        std::int32_t type_id = 0;
    };

    // A folder's tokenizer. `family` ("bert", "roberta", "distilbert") picks the
    // template when the files give none.
    static encoder_tokenizer from_folder(const std::filesystem::path& dir, const std::string& family) {
        std::error_code ec;
        auto present = [&](const char* f) { return std::filesystem::exists(dir / f, ec) || std::filesystem::is_symlink(dir / f, ec); };
        encoder_tokenizer t;
        nlohmann::json config;
        if (present("tokenizer_config.json")) config = read_json(dir / "tokenizer_config.json", tokenizer_file_limit, "the tokenizer config");
        t.read_config(config, (dir / "tokenizer_config.json").string());
        if (present("tokenizer.json")) {
            const auto path = (dir / "tokenizer.json").string();
            const auto text = detail::read_text_file(dir / "tokenizer.json");
            const auto j = parse_json(text, path);
            if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) throw error(path + ": no \"model\" object");
            const auto type = j["model"].value("type", std::string(j["model"].contains("merges") ? "BPE" : ""));
            try {
                if (type == "WordPiece")
                    t.wordpiece_.emplace(wordpiece::from_json(j, path));
                else if (type == "BPE")
                    t.bpe_.emplace(tokenizer::parse_json(text, path));
                else
                    throw error(path + ": the model is \"" + type + "\"; an encoder's tokenizer is WordPiece or byte-level BPE");
                if (j.contains("post_processor") && !j["post_processor"].is_null()) t.read_template(j["post_processor"], path);
            } catch (const nlohmann::json::exception& e) {
                throw error(path + ": unexpected JSON (" + e.what() + ")");
            }
        } else if (present("vocab.txt")) {
            t.wordpiece_.emplace(wordpiece::from_vocab_txt(detail::read_text_file(dir / "vocab.txt"), config, (dir / "vocab.txt").string()));
        } else if (present("vocab.json") && present("merges.txt")) {
            t.bpe_.emplace(tokenizer::from_vocab_merges(dir / "vocab.json", dir / "merges.txt"));
            for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"})
                if (const auto s = detail::config_token(config, key)) t.bpe_->add_special(*s);
        } else {
            throw error(dir.string() + ": no tokenizer (tokenizer.json, vocab.txt, or vocab.json + merges.txt)");
        }
        if (t.single_.empty()) t.default_template(family, config, dir.string());
        return t;
    }

    // The ids and token types of a text, or a pair, in the template, truncated
    // (longest first) to max_length tokens when max_length > 0 (or to
    // tokenizer_config.json's model_max_length, when it is smaller); max_length 0:
    // not truncated.
    // An empty second text is no pair, as transformers has it (text_pair="" is falsy).
    encoded_text encode(std::string_view a, std::optional<std::string_view> b = std::nullopt, std::size_t max_length = 0) const {
        if (b && b->empty()) b.reset();
        std::vector<std::int32_t> first = encode_plain(a), second;
        if (b) second = encode_plain(*b);
        const auto& tmpl = b ? pair_ : single_;
        std::size_t specials = 0;
        for (const auto& i : tmpl)
            if (!i.sequence) specials += i.ids.size();
        if (max_length && model_max_length_ && *model_max_length_ < max_length) max_length = *model_max_length_;
        encoded_text out;
        if (max_length) {
            const auto room = max_length > specials ? max_length - specials : 0;
            const auto n = first.size() + second.size();
            if (n > room) {
                out.dropped = n - room;
                if (!b) {
                    first.resize(room);
                } else {  // tokenizers' truncate_pair, longest_first
                    auto n1 = first.size(), n2 = second.size();
                    const bool swap = n1 > n2;
                    if (swap) std::swap(n1, n2);
                    n2 = n1 > room ? n1 : std::max(n1, room - n1);
                    if (n1 + n2 > room) {
                        n1 = room / 2;
                        n2 = n1 + room % 2;
                    }
                    if (swap) std::swap(n1, n2);
                    first.resize(std::min(first.size(), n1));
                    second.resize(std::min(second.size(), n2));
                }
            }
        }
        for (const auto& i : tmpl) {
            const auto& ids = !i.sequence ? i.ids : i.input == 0 ? first : second;
            out.ids.insert(out.ids.end(), ids.begin(), ids.end());
            out.token_types.insert(out.token_types.end(), ids.size(), i.type_id);
        }
        return out;
    }

    // The ids of a text without the template (add_special_tokens=False).
    std::vector<std::int32_t> encode_plain(std::string_view text) const {
        return wordpiece_ ? wordpiece_->encode(text) : bpe_->encode(text);
    }
    // The text of ids; the template's special tokens left out when asked.
    std::string decode(std::span<const std::int32_t> ids, bool skip_special = false) const {
        if (wordpiece_) return wordpiece_->decode(ids, skip_special);
        std::vector<std::int32_t> kept;
        for (const auto id : ids)
            if (!skip_special || std::none_of(bpe_->added_tokens().begin(), bpe_->added_tokens().end(),
                                              [&](const auto& t) { return t.id == id && t.special; }))
                kept.push_back(id);
        return bpe_->decode(kept);
    }
    std::int32_t vocab_size() const { return wordpiece_ ? wordpiece_->vocab_size() : bpe_->vocab_size(); }
    std::string kind() const { return wordpiece_ ? "WordPiece" : "byte-level BPE"; }
    std::optional<std::size_t> model_max_length() const { return model_max_length_; }
    const std::vector<item>& single_template() const { return single_; }
    const std::vector<item>& pair_template() const { return pair_; }

private:
    encoder_tokenizer() = default;

    std::optional<std::int32_t> id_of(const std::string& token) const {
        return wordpiece_ ? wordpiece_->id_of(token) : bpe_->id_of(token);
    }

    void read_config(const nlohmann::json& config, const std::string& path) {
        if (config.is_null()) return;
        if (!config.is_object()) throw error(path + ": not a JSON object");
        if (config.contains("model_max_length") && config["model_max_length"].is_number()) {
            // transformers writes a huge number (1e30) for "no limit".
            const auto m = config["model_max_length"].get<double>();
            if (!(m >= 1)) throw error(path + ": model_max_length must be a positive number, got " + config["model_max_length"].dump());
            if (m < 1e9) model_max_length_ = static_cast<std::size_t>(m);
        }
    }

    std::int32_t special_id(const std::string& token, const std::string& where) const {
        const auto id = id_of(token);
        if (!id) throw error(where + ": the special token \"" + token + "\" is not in the vocabulary");
        return *id;
    }

    void read_template(const nlohmann::json& p, const std::string& path) {
        const auto type = p.is_object() && p.contains("type") && p["type"].is_string() ? p["type"].get<std::string>() : std::string("(no type)");
        auto token_pair = [&](const char* key) {
            const auto& v = p.at(key);
            if (!v.is_array() || v.size() != 2 || !v[0].is_string() || !v[1].is_number_integer())
                throw error(path + ": the post-processor's " + key + " must be [token, id]");
            const auto id = v[1].get<std::int64_t>();
            if (id < 0 || id >= vocab_size())
                throw error(path + ": the post-processor's " + key + " id " + std::to_string(id) + " is outside the vocabulary of " +
                            std::to_string(vocab_size()));
            return static_cast<std::int32_t>(id);
        };
        if (type == "BertProcessing" || type == "RobertaProcessing") {
            const auto cls = token_pair("cls"), sep = token_pair("sep");
            const bool roberta = type == "RobertaProcessing";
            single_ = {{false, 0, {cls}, 0}, {true, 0, {}, 0}, {false, 0, {sep}, 0}};
            pair_ = single_;
            const std::int32_t t = roberta ? 0 : 1;
            if (roberta) pair_.push_back({false, 0, {sep}, 0});
            pair_.push_back({true, 1, {}, t});
            pair_.push_back({false, 0, {sep}, t});
            return;
        }
        if (type != "TemplateProcessing")
            throw error(path + ": the post-processor " + type +
                        " is not supported (TemplateProcessing, BertProcessing and RobertaProcessing are)");
        std::map<std::string, std::vector<std::int32_t>> specials;
        if (p.contains("special_tokens") && p["special_tokens"].is_object())
            for (const auto& [name, s] : p["special_tokens"].items()) {
                if (!s.is_object() || !s.contains("ids") || !s["ids"].is_array())
                    throw error(path + ": the template's special token \"" + name + "\" has no ids");
                std::vector<std::int32_t> ids;
                for (const auto& id : s["ids"]) {
                    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() >= vocab_size())
                        throw error(path + ": the template's special token \"" + name + "\" has an id outside the vocabulary");
                    ids.push_back(static_cast<std::int32_t>(id.get<std::int64_t>()));
                }
                specials[name] = ids;
            }
        auto read = [&](const char* key) {
            std::vector<item> items;
            if (!p.contains(key) || !p[key].is_array()) throw error(path + ": the template has no \"" + key + "\" list");
            for (const auto& e : p[key]) {
                if (!e.is_object() || e.size() != 1) throw error(path + ": the template's " + key + " items must be objects of one entry");
                const auto kind = e.begin().key();
                const auto& v = e.begin().value();
                const auto type_id = v.is_object() && v.contains("type_id") && v["type_id"].is_number_unsigned()
                                         ? static_cast<std::int32_t>(std::min<std::uint64_t>(v["type_id"].get<std::uint64_t>(), 1 << 20))
                                         : 0;
                const auto id = v.is_object() && v.contains("id") && v["id"].is_string() ? v["id"].get<std::string>() : std::string();
                if (kind == "Sequence") {
                    if (id != "A" && id != "B") throw error(path + ": the template's sequence \"" + id + "\" is neither A nor B");
                    items.push_back({true, id == "A" ? 0 : 1, {}, type_id});
                } else if (kind == "SpecialToken") {
                    const auto it = specials.find(id);
                    if (it == specials.end()) throw error(path + ": the template's special token \"" + id + "\" is not in its special_tokens");
                    items.push_back({false, 0, it->second, type_id});
                } else {
                    throw error(path + ": the template's item " + kind + " is neither Sequence nor SpecialToken");
                }
            }
            return items;
        };
        single_ = read("single");
        pair_ = read("pair");
    }

    // BERT's or RoBERTa's template, from the special tokens tokenizer_config.json names.
    void default_template(const std::string& family, const nlohmann::json& config, const std::string& where) {
        auto token = [&](const char* key, const char* fallback) { return detail::config_token(config, key).value_or(fallback); };
        if (family == "roberta") {
            const auto cls = special_id(token("cls_token", "<s>"), where), sep = special_id(token("sep_token", "</s>"), where);
            single_ = {{false, 0, {cls}, 0}, {true, 0, {}, 0}, {false, 0, {sep}, 0}};
            pair_ = {{false, 0, {cls}, 0}, {true, 0, {}, 0}, {false, 0, {sep}, 0}, {false, 0, {sep}, 0}, {true, 1, {}, 0}, {false, 0, {sep}, 0}};
        } else {
            const auto cls = special_id(token("cls_token", "[CLS]"), where), sep = special_id(token("sep_token", "[SEP]"), where);
            single_ = {{false, 0, {cls}, 0}, {true, 0, {}, 0}, {false, 0, {sep}, 0}};
            pair_ = {{false, 0, {cls}, 0}, {true, 0, {}, 0}, {false, 0, {sep}, 0}, {true, 1, {}, 1}, {false, 0, {sep}, 1}};
        }
    }

    std::optional<wordpiece> wordpiece_;
    std::optional<tokenizer> bpe_;
    std::vector<item> single_, pair_;
    std::optional<std::size_t> model_max_length_;
};

}  // namespace scribe::io
