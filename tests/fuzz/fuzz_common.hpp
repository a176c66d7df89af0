// What the fuzz targets share: a broken invariant (which aborts, so that libFuzzer
// keeps the input), the check every error message passes, and the nesting depth
// of a parsed JSON value (counted without recursion).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <scribe/core/error.hpp>

namespace fuzz {

// An invariant the library broke: says which, and aborts (libFuzzer saves the input).
[[noreturn]] inline void broken(const char* what) {
    std::fprintf(stderr, "fuzz: invariant broken: %s\n", what);
    std::abort();
}
inline void require(bool ok, const char* what) {
    if (!ok) broken(what);
}

// A refused input's message may be shown on a terminal, so it must not carry the
// input's control characters: no byte below 0x20 but a newline or a tab, no DEL,
// and no C1 control (U+0080..U+009F, as UTF-8: 0xC2 0x80..0x9F; U+009B is a CSI).
inline void check_message(const scribe::error& e) {
    const std::string_view m = e.what();
    for (std::size_t i = 0; i < m.size(); ++i) {
        const auto c = static_cast<unsigned char>(m[i]);
        const bool c1 = c == 0xc2 && i + 1 < m.size() && static_cast<unsigned char>(m[i + 1]) >= 0x80 &&
                        static_cast<unsigned char>(m[i + 1]) <= 0x9f;
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f || c1) {
            std::fprintf(stderr, "fuzz: an error message carries the control byte 0x%02x at %zu: %.*s\n", c, i,
                         static_cast<int>(m.size() > 400 ? 400 : m.size()), m.data());
            std::abort();
        }
    }
}

// How deep arrays and objects nest in `j` (a scalar: 0, [] or {}: 1, [[1]]: 2),
// with an explicit stack: a recursive walk is what the depth limit protects.
inline int json_depth(const nlohmann::json& j) {
    int deepest = 0;
    std::vector<std::pair<const nlohmann::json*, int>> todo{{&j, 0}};
    while (!todo.empty()) {
        const auto [v, above] = todo.back();
        todo.pop_back();
        if (!v->is_structured()) continue;
        const int d = above + 1;
        if (d > deepest) deepest = d;
        for (const auto& child : *v) todo.emplace_back(&child, d);
    }
    return deepest;
}

}  // namespace fuzz
