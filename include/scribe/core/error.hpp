// scribe/core/error.hpp — the one exception type the library throws.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace scribe {

// Every runtime misuse (a dynamic extent that disagrees, an unbound dimension, a
// malformed graph) throws this, with a message prefixed "[scribe] " that names the
// dimensions, dtypes and sizes involved in the user's words.
class error : public std::runtime_error {
public:
    explicit error(const std::string& what) : std::runtime_error("[scribe] " + what) {}
};

namespace detail {
// Formats a name as it appears in messages: `hidden`.
inline std::string ticked(std::string_view name) { return "`" + std::string(name) + "`"; }
}  // namespace detail

}  // namespace scribe
