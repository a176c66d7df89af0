// scribe/io/detail/utf8.hpp — reading and writing UTF-8 one code point at a time,
// and the character classes the tokenizers' pre-tokenizers split on
// (detail/unicode_tables.hpp). Bytes that are not well-formed UTF-8 are read one
// at a time as invalid characters, never skipped and never an error.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "unicode_tables.hpp"

namespace scribe::io::detail {

inline void append_utf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else if (c < 0x800) {
        out += static_cast<char>(0xC0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out += static_cast<char>(0xE0 | (c >> 12));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (c >> 18));
        out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    }
}

// One character of the input: a code point and its length in bytes, or (valid ==
// false) a single byte that is not part of well-formed UTF-8.
struct utf8_char {
    char32_t c;
    std::size_t len;
    bool valid;
};

// Decodes the character at s[i] (i < s.size()): well-formed UTF-8 only (no overlong
// forms, no surrogates, nothing above U+10FFFF); anything else is one invalid byte.
inline utf8_char utf8_at(std::string_view s, std::size_t i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) return {b0, 1, true};
    auto cont = [&](std::size_t k) { return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80; };
    auto at = [&](std::size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[i + k]) & 0x3F); };
    if (b0 >= 0xC2 && b0 <= 0xDF && cont(1)) return {(char32_t(b0 & 0x1F) << 6) | at(1), 2, true};
    if (b0 >= 0xE0 && b0 <= 0xEF && cont(1) && cont(2)) {
        const char32_t c = (char32_t(b0 & 0x0F) << 12) | (at(1) << 6) | at(2);
        if (c >= 0x800 && (c < 0xD800 || c > 0xDFFF)) return {c, 3, true};
    }
    if (b0 >= 0xF0 && b0 <= 0xF4 && cont(1) && cont(2) && cont(3)) {
        const char32_t c = (char32_t(b0 & 0x07) << 18) | (at(1) << 12) | (at(2) << 6) | at(3);
        if (c >= 0x10000 && c <= 0x10FFFF) return {c, 4, true};
    }
    return {b0, 1, false};
}

enum class char_class { letter, number, space, other };

inline char_class classify(const utf8_char& ch) {
    if (!ch.valid) return char_class::other;
    if (is_letter(ch.c)) return char_class::letter;
    if (is_number(ch.c)) return char_class::number;
    if (is_space(ch.c)) return char_class::space;
    return char_class::other;
}

// A token as a message shows it: well-formed UTF-8 kept (tokens are text in
// every script), control characters (C0, DEL, C1) and invalid bytes escaped.
inline std::string printable_token(std::string_view s) {
    static const char* hex = "0123456789abcdef";
    const auto shown = s.substr(0, 80);
    std::string out;
    for (std::size_t i = 0; i < shown.size();) {
        const auto ch = utf8_at(shown, i);
        const bool control = ch.c < 0x20 || (ch.c >= 0x7F && ch.c < 0xA0);
        if (ch.valid && !control) {
            out.append(shown.substr(i, ch.len));
        } else {
            for (std::size_t k = 0; k < ch.len; ++k) {
                const auto c = static_cast<unsigned char>(shown[i + k]);
                out += "\\x";
                out += hex[c >> 4];
                out += hex[c & 15];
            }
        }
        i += ch.len;
    }
    return s.size() > 80 ? out + "..." : out;
}

}  // namespace scribe::io::detail
