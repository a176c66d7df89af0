// scribe/io/detail/added_tokens.hpp — a tokenizer's added tokens (tokenizer.json's
// added_tokens: special tokens such as <|endoftext|> or [CLS], and tokens added
// after training), found in a text before the model splits it, as Hugging Face
// `tokenizers` finds them. Shared by every tokenizer model (io/tokenizer.hpp's
// byte-level BPE, io/wordpiece.hpp's WordPiece).
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../core/error.hpp"
#include "unicode_tables.hpp"
#include "utf8.hpp"

namespace scribe::io::detail {

// An added token: found in the text before the model splits it.
struct added_token {
    std::string content;
    std::int32_t id;
    bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = true;
};

// A stretch of text: an added token's (id >= 0) or text to split (-1).
struct segment {
    std::size_t begin, end;
    std::int32_t id;
};

// The largest token id a vocabulary may hold.
inline constexpr std::uint64_t max_token_id = std::numeric_limits<std::int32_t>::max() - 1;

class added_vocabulary {
public:
    std::vector<added_token> tokens;

    // Reads tokenizer.json's added_tokens array; errors name the file (`name`).
    static std::vector<added_token> parse(const nlohmann::json& added, const std::string& name) {
        if (!added.is_array()) throw error(name + ": added_tokens is not an array");
        auto field = [](const nlohmann::json& o, const char* key) -> const nlohmann::json* {
            const auto it = o.find(key);
            return it == o.end() || it->is_null() ? nullptr : &*it;
        };
        std::vector<added_token> out;
        for (std::size_t i = 0; i < added.size(); ++i) {
            const auto& a = added[i];
            const auto what = "added token " + std::to_string(i);
            if (!a.is_object()) throw error(name + ": " + what + " is not an object");
            auto flag = [&](const char* key, bool fallback) {
                const auto* f = field(a, key);
                if (!f) return fallback;
                if (!f->is_boolean()) throw error(name + ": " + what + " `" + key + "` is not true or false");
                return f->get<bool>();
            };
            const auto* content = field(a, "content");
            const auto* id = field(a, "id");
            if (!content || !content->is_string()) throw error(name + ": " + what + " has no content string");
            if (!id || !id->is_number_integer() ||
                (id->is_number_unsigned() ? id->get<std::uint64_t>() > max_token_id : id->get<std::int64_t>() < 0))
                throw error(name + ": " + what + " has no id in 0.." + std::to_string(max_token_id));
            out.push_back({content->get<std::string>(), static_cast<std::int32_t>(id->get<std::int64_t>()), flag("single_word", false),
                           flag("lstrip", false), flag("rstrip", false), flag("normalized", false), flag("special", false)});
        }
        return out;
    }

    // Indexes the tokens by their first byte (call once they are all in).
    void index() {
        for (auto& v : raw_) v.clear();
        for (auto& v : normalized_) v.clear();
        for (std::size_t i = 0; i < tokens.size(); ++i)
            if (!tokens[i].content.empty())
                (tokens[i].normalized ? normalized_ : raw_)[static_cast<unsigned char>(tokens[i].content[0])].push_back(i);
    }

    bool empty() const { return tokens.empty(); }

    // Splits text on the tokens matched on the raw text (normalized = false).
    std::vector<segment> split_raw(std::string_view text) const {
        std::vector<segment> out;
        find(text, 0, text.size(), raw_, out);
        return out;
    }
    // Splits text on the tokens matched on normalized text (normalized = true).
    std::vector<segment> split_normalized(std::string_view text) const {
        std::vector<segment> out;
        find(text, 0, text.size(), normalized_, out);
        return out;
    }
    // Both, for a model without a normalizer: the raw tokens first, then in what
    // is left those matched on the (same) normalized text.
    std::vector<segment> split(std::string_view text) const {
        std::vector<segment> out;
        if (tokens.empty()) {
            out.push_back({0, text.size(), -1});
            return out;
        }
        for (const auto& s : split_raw(text)) {
            if (s.id >= 0)
                out.push_back(s);
            else
                find(text, s.begin, s.end, normalized_, out);
        }
        return out;
    }

private:
    using index_type = std::array<std::vector<std::size_t>, 256>;  // by first byte: indices into tokens

    // Added tokens in text[begin, end), as `tokenizers` finds them: the leftmost
    // match, the longest there; single_word tokens only between non-word characters;
    // lstrip/rstrip take the whitespace beside them.
    void find(std::string_view text, std::size_t begin, std::size_t end, const index_type& index, std::vector<segment>& out) const {
        auto is_space_at = [&](std::size_t i) { return classify(utf8_at(text, i)) == char_class::space; };
        auto word = [](const utf8_char& ch) { return ch.valid && is_word(ch.c); };  // regex \w
        // The character that ends at byte `i` (i > begin).
        auto char_before = [&](std::size_t i) {
            std::size_t j = i - 1;
            while (j > begin && i - j < 4 && (static_cast<unsigned char>(text[j]) & 0xC0) == 0x80) --j;
            const auto ch = utf8_at(text, j);
            return j + ch.len == i ? ch : utf8_at(text, i - 1);
        };
        std::size_t start_offset = begin, i = begin;
        while (i < end) {
            const added_token* best = nullptr;
            for (const auto k : index[static_cast<unsigned char>(text[i])]) {
                const auto& a = tokens[k];
                if (a.content.size() <= end - i && text.compare(i, a.content.size(), a.content) == 0 &&
                    (!best || a.content.size() > best->content.size()))
                    best = &a;
            }
            if (!best) {
                ++i;
                continue;
            }
            std::size_t start = i, stop = i + best->content.size();
            i = stop;
            if (best->single_word) {
                const bool left_ok = start == begin || !word(char_before(start));
                const bool right_ok = stop == end || !word(utf8_at(text, stop));
                if (!left_ok || !right_ok) continue;
            }
            if (best->lstrip) {
                std::size_t s = start;
                while (s > start_offset) {
                    const auto ch = char_before(s);
                    if (classify(ch) != char_class::space) break;
                    s -= ch.len;
                }
                start = s;
            }
            if (best->rstrip)
                while (stop < end && is_space_at(stop)) stop += utf8_at(text, stop).len;
            if (start_offset < start) out.push_back({start_offset, start, -1});
            out.push_back({start, stop, best->id});
            start_offset = i = stop;
        }
        if (start_offset < end || begin == end) out.push_back({start_offset, end, -1});
    }

    index_type raw_{}, normalized_{};
};

// A special token tokenizer_config.json names under `key` (a string, or an
// AddedToken object with a "content"), if it names one.
inline std::optional<std::string> config_token(const nlohmann::json& config, const char* key) {
    if (!config.is_object() || !config.contains(key)) return std::nullopt;
    const auto& v = config[key];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    return std::nullopt;
}

}  // namespace scribe::io::detail
