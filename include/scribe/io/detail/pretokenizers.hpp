// scribe/io/detail/pretokenizers.hpp — how the BPE tokenizers (io/tokenizer.hpp)
// cut a text into the pieces BPE runs on: GPT-2's and Llama 3's patterns (each
// implemented by hand over code points, detail/unicode_tables.hpp giving the
// classes), GPT-2's byte-level alphabet, and SentencePiece's Metaspace.
//
// A byte that is not part of well-formed UTF-8 counts as one character of none of
// the classes (not a letter, number or space).
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "unicode_tables.hpp"
#include "utf8.hpp"

namespace scribe::io::detail {

// The two patterns a Split pre-tokenizer may have, as tokenizer.json spells them.
inline constexpr std::string_view gpt2_pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view llama3_pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// GPT-2's bytes_to_unicode: the printable character each byte is written as.
inline const std::array<char32_t, 256>& byte_to_char() {
    static const std::array<char32_t, 256> table = [] {
        std::array<char32_t, 256> t{};
        char32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            t[static_cast<std::size_t>(b)] = printable ? static_cast<char32_t>(b) : next++;
        }
        return t;
    }();
    return table;
}

// The byte-level spelling of one byte ("Ġ" for a space).
inline const std::array<std::string, 256>& byte_spelling() {
    static const std::array<std::string, 256> table = [] {
        std::array<std::string, 256> t;
        for (std::size_t b = 0; b < 256; ++b) append_utf8(t[b], byte_to_char()[b]);
        return t;
    }();
    return table;
}

// The end of the run of characters of class k that starts at s[j].
inline std::size_t class_run(std::string_view s, std::size_t j, char_class k) {
    while (j < s.size()) {
        const auto ch = utf8_at(s, j);
        if (classify(ch) != k) break;
        j += ch.len;
    }
    return j;
}

// \s+(?!\S)|\s+ at s[i], whose whitespace run ends at `end`: the run, less its
// last character when a non-space follows; a single whitespace character before a
// non-space.
inline std::size_t space_run_match(std::string_view s, std::size_t i, std::size_t end) {
    if (end == s.size()) return end - i;
    std::size_t last = i;
    for (std::size_t j = i; j < end; j += utf8_at(s, j).len) last = j;
    return last > i ? last - i : end - i;
}

// The length of the match of GPT-2's pattern at s[i] (i < s.size()); always >= 1,
// since every character is in one of the pattern's classes.
inline std::size_t gpt2_match_at(std::string_view s, std::size_t i) {
    // 's|'t|'re|'ve|'m|'ll|'d
    if (s[i] == '\'') {
        for (std::string_view c : {"s", "t", "re", "ve", "m", "ll", "d"})
            if (s.substr(i + 1).starts_with(c)) return 1 + c.size();
    }
    const auto first = utf8_at(s, i);
    const auto cls = classify(first);
    //  ?\p{L}+|  ?\p{N}+|  ?[^\s\p{L}\p{N}]+
    if (s[i] == ' ' && i + 1 < s.size()) {
        const auto k = classify(utf8_at(s, i + 1));
        if (k != char_class::space) return class_run(s, i + 1, k) - i;
    }
    if (cls != char_class::space) return class_run(s, i, cls) - i;
    return space_run_match(s, i, class_run(s, i, char_class::space));
}

inline bool is_cr_lf(std::string_view s, std::size_t i) { return s[i] == '\r' || s[i] == '\n'; }

// The length of the match of Llama 3's pattern at s[i] (i < s.size()), always >= 1:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*
//   |\s*[\r\n]+|\s+(?!\S)|\s+
// The first alternative that matches wins, as in a backtracking regex. The
// contractions ignore case as Oniguruma's (?i) does: 'S, 'Ll, and U+017F (long s,
// whose case folding is s) for s.
inline std::size_t llama3_match_at(std::string_view s, std::size_t i) {
    if (s[i] == '\'' && i + 1 < s.size()) {
        const auto lower = [&](std::size_t j) -> int {
            if (j >= s.size()) return 0;
            const auto ch = utf8_at(s, j);
            if (ch.valid && ch.c == 0x17F) return 's' | (2 << 8);  // the character, 2 bytes long
            const auto c = static_cast<unsigned char>(s[j]);
            return (c >= 'A' && c <= 'Z' ? c + 32 : c) | (1 << 8);
        };
        const auto a = lower(i + 1);
        const int first = a & 0xFF;
        const auto first_len = static_cast<std::size_t>(a >> 8);
        if (first == 's' || first == 't' || first == 'm' || first == 'd') return 1 + first_len;
        if (first == 'r' || first == 'v' || first == 'l') {
            const auto b = lower(i + 1 + first_len);
            const int want = first == 'l' ? 'l' : 'e';
            if ((b & 0xFF) == want) return 1 + first_len + static_cast<std::size_t>(b >> 8);
        }
    }
    const auto first = utf8_at(s, i);
    const auto cls = classify(first);
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (cls == char_class::letter) return class_run(s, i, char_class::letter) - i;
    if (cls != char_class::number && !is_cr_lf(s, i) && i + first.len < s.size() &&
        classify(utf8_at(s, i + first.len)) == char_class::letter)
        return class_run(s, i + first.len, char_class::letter) - i;
    // \p{N}{1,3}
    if (cls == char_class::number) {
        std::size_t j = i;
        for (int n = 0; n < 3 && j < s.size(); ++n) {
            const auto ch = utf8_at(s, j);
            if (classify(ch) != char_class::number) break;
            j += ch.len;
        }
        return j - i;
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*
    {
        std::size_t j = i;
        if (s[j] == ' ' && j + 1 < s.size() && classify(utf8_at(s, j + 1)) == char_class::other) ++j;
        if (classify(utf8_at(s, j)) == char_class::other) {
            j = class_run(s, j, char_class::other);
            while (j < s.size() && is_cr_lf(s, j)) ++j;
            return j - i;
        }
    }
    // What is left starts with whitespace. \s*[\r\n]+: the whitespace run up to
    // its last CR or LF, if it has one.
    const auto end = class_run(s, i, char_class::space);
    std::size_t last_crlf = 0;
    for (std::size_t j = i; j < end; j += utf8_at(s, j).len)
        if (is_cr_lf(s, j)) last_crlf = j + 1;
    if (last_crlf) return last_crlf - i;
    return space_run_match(s, i, end);
}

// Splits `text` by a pattern's matcher into pieces.
template <class Match>
std::vector<std::string_view> split_by(std::string_view text, Match&& match_at) {
    std::vector<std::string_view> out;
    for (std::size_t i = 0; i < text.size();) {
        const auto n = match_at(text, i);
        out.push_back(text.substr(i, n));
        i += n;
    }
    return out;
}

// SentencePiece's Metaspace pre-tokenizer: spaces become the replacement
// character (U+2581 "▁"), which is put in front of a stretch of text that does
// not start with it (prepend "always"; "first": only the stretch at the start of
// the text, not one after an added token; "never"), and with split the stretch is
// cut before each replacement character.
struct metaspace {
    enum class prepend { always, first, never };
    std::string replacement = "\u2581";
    prepend scheme = prepend::always;
    bool split = true;

    std::string apply(std::string_view text, bool at_start) const {
        std::string out;
        if (scheme == prepend::always || (scheme == prepend::first && at_start))
            if (!text.starts_with(replacement) && !text.starts_with(' ')) out = replacement;
        for (const char c : text) {
            if (c == ' ') out += replacement;
            else out += c;
        }
        return out;
    }
    // Pieces of apply()'s result: each starts at a replacement character.
    std::vector<std::string_view> pieces(std::string_view s) const {
        if (!split) return {s};
        std::vector<std::string_view> out;
        std::size_t from = 0;
        for (std::size_t at = s.find(replacement, 1); at != std::string_view::npos; at = s.find(replacement, at + 1)) {
            out.push_back(s.substr(from, at - from));
            from = at;
        }
        if (from < s.size()) out.push_back(s.substr(from));
        return out;
    }
};

}  // namespace scribe::io::detail
