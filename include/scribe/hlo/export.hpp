// scribe/hlo/export.hpp — one call from a graph to HLO text, proto bytes, or files.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include "lower.hpp"
#include "proto.hpp"
#include "text.hpp"

namespace scribe::hlo {

inline std::string to_text(const graph& g) { return to_text(lower(g)); }
inline std::string to_proto(const graph& g) { return to_proto(lower(g)); }

struct written {
    std::filesystem::path text, proto;
};

// Writes <dir>/<stem>.hlo (text) and <dir>/<stem>.pb (HloModuleProto).
inline written write(const graph& g, const std::filesystem::path& dir, const std::string& stem) {
    const auto m = lower(g);
    std::filesystem::create_directories(dir);
    written out{dir / (stem + ".hlo"), dir / (stem + ".pb")};
    auto put = [](const std::filesystem::path& p, const std::string& bytes) {
        std::ofstream f(p, std::ios::binary);
        f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!f) throw error("hlo: cannot write " + p.string());
    };
    put(out.text, to_text(m));
    put(out.proto, to_proto(m));
    return out;
}

}  // namespace scribe::hlo
