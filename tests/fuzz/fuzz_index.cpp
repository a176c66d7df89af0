// libFuzzer target: a sharded checkpoint's model.safetensors.index.json, as
// io::checkpoint reads it: io::parse_json (depth-limited, duplicate keys refused)
// and io::read_weight_map. Any input is refused with scribe::error (whose message
// carries none of the input's control characters) or gives a map in which every
// tensor of "weight_map" is named once, with the file the index gave it, and
// every file name stays in the model's folder: not empty, not "." or "..", no
// '/' and no NUL byte (the checkpoint opens folder / name).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <scribe/io/json.hpp>
#include <scribe/io/checkpoint.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using fuzz::require;
    try {
        const auto j = scribe::io::parse_json(std::string_view(reinterpret_cast<const char*>(data), size),
                                              "fuzz/model.safetensors.index.json");
        const auto map = scribe::io::read_weight_map(j, "fuzz/model.safetensors.index.json");
        require(!map.empty(), "an accepted index names a tensor");
        require(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), "an accepted index has a weight_map");
        const auto& wm = j["weight_map"];
        require(map.size() == wm.size(), "every tensor of the weight_map is in the map, once");
        for (const auto& [tensor, file] : map) {
            require(wm.contains(tensor) && wm[tensor].is_string() && wm[tensor].get<std::string>() == file,
                    "each tensor keeps the file the index gave it");
            require(!file.empty(), "a file name is not empty");
            require(file != "." && file != "..", "a file name is not . or ..");
            require(file.find('/') == std::string::npos, "a file name has no /");
            require(file.find('\0') == std::string::npos, "a file name has no NUL byte");
        }
    } catch (const scribe::error& e) {
        // A refused index: the expected outcome for most inputs.
        fuzz::check_message(e);
    }
    return 0;
}
