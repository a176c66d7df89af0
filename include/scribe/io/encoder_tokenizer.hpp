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

#include "detail/post_processor.hpp"
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
    using item = detail::template_item;

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

    // The post-processor's templates (detail/post_processor.hpp); an encoder needs
    // one, so a post-processor that adds nothing (ByteLevel) is refused.
    void read_template(const nlohmann::json& p, const std::string& path) {
        auto t = detail::read_post_processor(p, path, vocab_size());
        if (!t) {
            const auto type = p.is_object() && p.contains("type") && p["type"].is_string() ? p["type"].get<std::string>() : std::string("(no type)");
            throw error(path + ": the post-processor " + type +
                        " is not supported (an encoder needs a template: TemplateProcessing, BertProcessing or RobertaProcessing)");
        }
        single_ = std::move(t->single);
        pair_ = std::move(t->pair);
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
