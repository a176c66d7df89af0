// scribe/core/fixed_string.hpp — a string usable as a template argument.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>

namespace scribe {

template <std::size_t N>
struct fixed_string {
    char chars[N]{};
    constexpr fixed_string(const char (&s)[N]) { std::copy_n(s, N, chars); }
    constexpr std::string_view view() const { return {chars, N - 1}; }
    constexpr operator std::string_view() const { return view(); }
};

}  // namespace scribe
