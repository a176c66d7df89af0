// scribe/io/detail/pipeline.hpp — the text steps around a BPE model that
// tokenizer.json describes (io/tokenizer.hpp): the normalizers before it
// (Prepend, Replace, and a Sequence of them) and the decoders after it (ByteLevel,
// Replace, ByteFallback, Fuse, Strip, Metaspace, and a Sequence of them), each
// read from its JSON with errors that name the file and the component, and
// applied as `tokenizers` applies them. Anything else is refused by name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../core/error.hpp"
#include "pretokenizers.hpp"
#include "utf8.hpp"

namespace scribe::io::detail {

// Every occurrence of `from` in s replaced by `to`.
inline std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
    if (from.empty()) return std::string(s);
    std::string out;
    std::size_t i = 0;
    for (auto at = s.find(from); at != std::string_view::npos; at = s.find(from, i)) {
        out.append(s.substr(i, at - i));
        out.append(to);
        i = at + from.size();
    }
    out.append(s.substr(i));
    return out;
}

// A component's "type", for messages.
inline std::string component_type(const nlohmann::json& o) {
    if (!o.is_object()) return "(not an object)";
    const auto it = o.find("type");
    return it != o.end() && it->is_string() ? printable_token(it->get<std::string>()) : "(no type)";
}

// A string field of a component, or an error naming it.
inline std::string component_string(const nlohmann::json& o, const char* key, const std::string& where) {
    const auto it = o.find(key);
    if (it == o.end() || !it->is_string()) throw error(where + " has no string `" + key + "`");
    return it->get<std::string>();
}

// Replace's pattern: {"String": s} (a Regex pattern is refused).
inline std::string replace_pattern(const nlohmann::json& o, const std::string& where) {
    const auto it = o.find("pattern");
    if (it == o.end() || !it->is_object()) throw error(where + " has no pattern");
    if (const auto s = it->find("String"); s != it->end() && s->is_string()) return s->get<std::string>();
    if (it->contains("Regex")) throw error(where + " replaces a Regex pattern, which is not supported (only a String)");
    throw error(where + "'s pattern is neither a String nor a Regex");
}

// Normalizers: the steps run, in order, on each stretch of text between added tokens.
struct normalizer_step {
    enum class kind { prepend, replace } op;
    std::string text, by;  // prepend: text; replace: text -> by
};

inline void read_normalizer(const nlohmann::json& n, const std::string& name, std::vector<normalizer_step>& out) {
    const auto type = component_type(n);
    const auto where = name + ": the normalizer " + type;
    if (type == "Sequence") {
        const auto it = n.find("normalizers");
        if (it == n.end() || !it->is_array()) throw error(where + " has no list of normalizers");
        for (const auto& m : *it) read_normalizer(m, name, out);
    } else if (type == "Prepend") {
        out.push_back({normalizer_step::kind::prepend, component_string(n, "prepend", where), {}});
    } else if (type == "Replace") {
        out.push_back({normalizer_step::kind::replace, replace_pattern(n, where), component_string(n, "content", where)});
    } else {
        throw error(where + " is not supported (Scribe's BPE tokenizers read Prepend, Replace and a Sequence of them)");
    }
}

inline std::string normalize(std::string_view text, const std::vector<normalizer_step>& steps) {
    std::string s(text);
    for (const auto& st : steps) {
        if (st.op == normalizer_step::kind::prepend) {
            if (!s.empty()) s.insert(0, st.text);  // as `tokenizers`: not to an empty stretch
        } else {
            s = replace_all(s, st.text, st.by);
        }
    }
    return s;
}

// Decoders: the steps run, in order, on the list of token strings, which are then
// joined. The byte-level and byte-fallback steps give bytes: where the reference
// puts U+FFFD for bytes that are not well-formed UTF-8 (a token cutting a
// character), decode keeps the bytes, so that tokens decoded one at a time join
// back into the text; text_of() gives the reference's string.
struct decoder_step {
    enum class kind { byte_level, replace, byte_fallback, fuse, strip, metaspace } op;
    std::string text, by;          // replace: text -> by; strip: text is the character
    std::size_t start = 0, stop = 0;  // strip
    detail::metaspace meta{};      // metaspace
};

// SentencePiece's byte tokens: "<0xNN>" (two upper-case hex digits) for byte NN.
inline std::string byte_token_text(int b) {
    static const char* hex = "0123456789ABCDEF";
    return std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
}
inline std::optional<int> byte_token(std::string_view t) {  // "<0xNN>" -> NN
    if (t.size() != 6 || !t.starts_with("<0x") || t.back() != '>') return std::nullopt;
    int v = 0;
    for (const char c : t.substr(3, 2)) {
        const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return std::nullopt;
        v = v * 16 + d;
    }
    return v;
}

inline metaspace read_metaspace(const nlohmann::json& o, const std::string& where) {
    metaspace m;
    m.replacement = component_string(o, "replacement", where);
    if (m.replacement.empty()) throw error(where + "'s replacement is empty");
    if (const auto it = o.find("prepend_scheme"); it != o.end() && !it->is_null()) {
        const auto v = it->is_string() ? it->get<std::string>() : std::string();
        if (v == "always") m.scheme = metaspace::prepend::always;
        else if (v == "first") m.scheme = metaspace::prepend::first;
        else if (v == "never") m.scheme = metaspace::prepend::never;
        else throw error(where + "'s prepend_scheme is " + it->dump() + ", not \"always\", \"first\" or \"never\"");
    } else if (const auto a = o.find("add_prefix_space"); a != o.end() && a->is_boolean()) {  // older files
        m.scheme = a->get<bool>() ? metaspace::prepend::always : metaspace::prepend::never;
    }
    if (const auto it = o.find("split"); it != o.end() && !it->is_null()) {
        if (!it->is_boolean()) throw error(where + "'s split is not true or false");
        m.split = it->get<bool>();
    }
    return m;
}

inline void read_decoder(const nlohmann::json& d, const std::string& name, std::vector<decoder_step>& out) {
    const auto type = component_type(d);
    const auto where = name + ": the decoder " + type;
    using k = decoder_step::kind;
    if (type == "Sequence") {
        const auto it = d.find("decoders");
        if (it == d.end() || !it->is_array()) throw error(where + " has no list of decoders");
        for (const auto& m : *it) read_decoder(m, name, out);
    } else if (type == "ByteLevel") {
        out.push_back({k::byte_level, {}, {}});
    } else if (type == "Replace") {
        out.push_back({k::replace, replace_pattern(d, where), component_string(d, "content", where)});
    } else if (type == "ByteFallback") {
        out.push_back({k::byte_fallback, {}, {}});
    } else if (type == "Fuse") {
        out.push_back({k::fuse, {}, {}});
    } else if (type == "Strip") {
        decoder_step st{k::strip, component_string(d, "content", where), {}};
        for (auto [key, field] : {std::pair{"start", &st.start}, std::pair{"stop", &st.stop}}) {
            const auto it = d.find(key);
            if (it == d.end() || !it->is_number_unsigned() || it->get<std::uint64_t>() > 1024)
                throw error(where + "'s `" + key + "` is not a count from 0 to 1024");
            *field = it->get<std::size_t>();
        }
        if (utf8_at(st.text, 0).len != st.text.size() || st.text.empty())
            throw error(where + "'s content \"" + printable_token(st.text) + "\" is not one character");
        out.push_back(std::move(st));
    } else if (type == "Metaspace") {
        decoder_step st{k::metaspace, {}, {}};
        st.meta = read_metaspace(d, where);
        out.push_back(std::move(st));
    } else {
        throw error(where + " is not supported (Scribe's BPE tokenizers read ByteLevel, Replace, ByteFallback, Fuse, Strip, "
                    "Metaspace and a Sequence of them)");
    }
}

// U+FFFD for each maximal part of s that is not well-formed UTF-8 (Python's
// errors="replace", Rust's from_utf8_lossy).
inline std::string lossy_utf8(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        const auto ch = utf8_at(s, i);
        if (ch.valid) {
            out.append(s.substr(i, ch.len));
            i += ch.len;
            continue;
        }
        // The longest prefix of a well-formed sequence that starts here, as one U+FFFD.
        const auto b0 = static_cast<unsigned char>(s[i]);
        std::size_t need = b0 >= 0xC2 && b0 <= 0xDF ? 1 : b0 >= 0xE0 && b0 <= 0xEF ? 2 : b0 >= 0xF0 && b0 <= 0xF4 ? 3 : 0;
        std::size_t j = i + 1;
        for (std::size_t k = 0; k < need && j < s.size(); ++k, ++j) {
            const auto b = static_cast<unsigned char>(s[j]);
            unsigned char lo = 0x80, hi = 0xBF;
            if (k == 0 && b0 == 0xE0) lo = 0xA0;
            if (k == 0 && b0 == 0xED) hi = 0x9F;
            if (k == 0 && b0 == 0xF0) lo = 0x90;
            if (k == 0 && b0 == 0xF4) hi = 0x8F;
            if (b < lo || b > hi) break;
        }
        out.append("\xEF\xBF\xBD");
        i = j;
    }
    return out;
}

// Runs the decoder steps over the tokens' strings and joins them. `lossy`: bytes
// that are not well-formed UTF-8 become U+FFFD as in the reference (ByteLevel and
// ByteFallback steps).
inline std::string run_decoders(std::vector<std::string> tokens, const std::vector<decoder_step>& steps, bool lossy,
                                std::string (*byte_level_bytes)(const std::string&)) {
    using k = decoder_step::kind;
    for (const auto& st : steps) {
        switch (st.op) {
            case k::byte_level: {
                std::string all;
                for (const auto& t : tokens) all += byte_level_bytes(t);
                tokens.assign(1, lossy ? lossy_utf8(all) : all);
                break;
            }
            case k::replace:
                for (auto& t : tokens) t = replace_all(t, st.text, st.by);
                break;
            case k::byte_fallback: {
                std::vector<std::string> out;
                std::string run;
                bool in_run = false;
                // A run of byte tokens: its bytes, or (lossy, when they are not
                // well-formed UTF-8) U+FFFD for each byte, as `tokenizers` does.
                auto flush = [&] {
                    if (!in_run) return;
                    if (!lossy || lossy_utf8(run) == run) {
                        out.push_back(run);
                    } else {
                        std::string bad;
                        for (std::size_t i = 0; i < run.size(); ++i) bad += "\xEF\xBF\xBD";
                        out.push_back(bad);
                    }
                    run.clear();
                    in_run = false;
                };
                for (auto& t : tokens) {
                    if (const auto b = byte_token(t)) {
                        run += static_cast<char>(*b);
                        in_run = true;
                        continue;
                    }
                    flush();
                    out.push_back(std::move(t));
                }
                flush();
                tokens = std::move(out);
                break;
            }
            case k::fuse: {
                std::string all;
                for (const auto& t : tokens) all += t;
                tokens.assign(1, all);
                break;
            }
            case k::strip:
                for (auto& t : tokens) {
                    std::size_t a = 0, n = t.size();
                    for (std::size_t c = 0; c < st.start && t.compare(a, st.text.size(), st.text) == 0 && a < n; ++c) a += st.text.size();
                    for (std::size_t c = 0; c < st.stop && n >= a + st.text.size() && t.compare(n - st.text.size(), st.text.size(), st.text) == 0; ++c)
                        n -= st.text.size();
                    t = t.substr(a, n - a);
                }
                break;
            case k::metaspace:
                // As `tokenizers`: in the first token every replacement character is
                // dropped (the prefix it was put there as), elsewhere it is a space.
                for (std::size_t i = 0; i < tokens.size(); ++i)
                    tokens[i] = replace_all(tokens[i], st.meta.replacement,
                                            i == 0 && st.meta.scheme != metaspace::prepend::never ? "" : " ");
                break;
        }
    }
    std::string out;
    for (const auto& t : tokens) out += t;
    return out;
}

}  // namespace scribe::io::detail
