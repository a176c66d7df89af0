// scribe/io/json.hpp — every JSON file Scribe reads (config.json, tokenizer files,
// a sharded checkpoint's index, a safetensors header) is parsed here, as hostile
// input: nesting is bounded (a value nested 10^5 deep would otherwise overflow the
// stack when printed, copied or compared later), a key repeated in one object is
// refused (a JSON reader keeps one of the two silently; which one differs between
// readers), and parse errors say where without echoing the file's bytes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "file.hpp"

namespace scribe::io {

// How deep objects and arrays may nest. The deepest real model files nest 6
// levels (tokenizer.json's pre-tokenizer sequences).
inline constexpr int json_depth_limit = 64;

// A JSON value as a message shows it: a scalar as written (cut short), an object
// or an array by its kind and size, never the whole of it.
inline std::string shown(const nlohmann::json& v) {
    if (v.is_object()) return "an object of " + std::to_string(v.size()) + " keys";
    if (v.is_array()) return "an array of " + std::to_string(v.size()) + " values";
    return printable(v.dump());
}

namespace detail {

// The location of the value being parsed, as /key/[]/key, for messages.
inline std::string json_path(const std::vector<std::string>& path) {
    std::string out;
    const std::size_t shown = 8;  // the outermost levels, then an ellipsis
    for (std::size_t i = 0; i < path.size() && i < shown; ++i) out += "/" + path[i];
    if (path.size() > shown) out += "/...";
    return out.empty() ? "/" : out;
}

// nlohmann's message without the "last read: '...'" that quotes the input.
inline std::string parse_message(const nlohmann::json::exception& e) {
    std::string m = e.what();
    if (const auto cut = m.find("; last read"); cut != std::string::npos) m.erase(cut);
    if (m.starts_with("[json.exception.")) m.erase(0, m.find("] ") + 2);  // nlohmann's tag
    return m;
}

}  // namespace detail

// Parses `text`; `source` names it in errors (a file's path).
inline nlohmann::json parse_json(std::string_view text, const std::string& source) {
    struct level {
        bool object;
        std::unordered_set<std::string> keys;
    };
    std::vector<level> open;
    std::vector<std::string> path;
    using event = nlohmann::json::parse_event_t;
    auto check = [&](int depth, event e, nlohmann::json& parsed) {
        switch (e) {
            case event::object_start:
            case event::array_start:
                if (depth >= json_depth_limit)
                    throw error(source + ": JSON nested deeper than " + std::to_string(json_depth_limit) + " levels (at " +
                                detail::json_path(path) + ")");
                open.push_back({e == event::object_start, {}});
                path.push_back(e == event::array_start ? "[]" : "");
                break;
            case event::key: {
                auto k = parsed.get<std::string>();
                if (!open.empty() && open.back().object) {
                    if (!open.back().keys.insert(k).second) {
                        path.back() = printable(k);
                        throw error(source + ": key \"" + printable(k) + "\" appears twice in one object (at " +
                                    detail::json_path(path) + ")");
                    }
                    path.back() = printable(k);
                }
                break;
            }
            case event::object_end:
            case event::array_end:
                if (!open.empty()) open.pop_back();
                if (!path.empty()) path.pop_back();
                break;
            case event::value: break;
        }
        return true;
    };
    try {
        return nlohmann::json::parse(text.begin(), text.end(), check);
    } catch (const nlohmann::json::exception& e) {
        throw error(source + ": not valid JSON (" + detail::parse_message(e) + ")");
    }
}

// A JSON file of at most `limit` bytes (a regular file: see file.hpp).
inline nlohmann::json read_json(const std::filesystem::path& file, std::uint64_t limit, const std::string& what) {
    return parse_json(read_text(file, limit, what), file.string());
}

}  // namespace scribe::io
