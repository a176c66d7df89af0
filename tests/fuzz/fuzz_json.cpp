// libFuzzer target: io::parse_json, the reader every JSON file Scribe reads goes
// through, fed raw bytes. Any input is refused with scribe::error (whose message
// carries none of the input's control characters) or parsed into a value that
//   - nests at most io::json_depth_limit levels (counted without recursion),
//   - can be dumped, and parses back (through parse_json) to the same value.
// Before the first input the limit itself is checked: 64 nested arrays or
// objects are read, 65 are refused, and so are 10^5.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <scribe/io/json.hpp>

#include "fuzz_common.hpp"

namespace {

using fuzz::require;

std::string nested(int levels, bool objects) {
    std::string s;
    for (int i = 0; i < levels; ++i) s += objects ? "{\"a\":" : "[";
    s += "1";
    for (int i = 0; i < levels; ++i) s += objects ? "}" : "]";
    return s;
}

bool accepted(const std::string& text) {
    try {
        (void)scribe::io::parse_json(text, "fuzz/limit.json");
        return true;
    } catch (const scribe::error& e) {
        fuzz::check_message(e);
        return false;
    }
}

const bool limit_checked = [] {
    const int limit = scribe::io::json_depth_limit;
    for (const bool objects : {false, true}) {
        require(accepted(nested(limit, objects)), "JSON nested json_depth_limit levels is read");
        require(fuzz::json_depth(scribe::io::parse_json(nested(limit, objects), "fuzz/limit.json")) == limit,
                "json_depth counts the levels");
        require(!accepted(nested(limit + 1, objects)), "JSON nested one level more than json_depth_limit is refused");
        require(!accepted(nested(100000, objects)), "JSON nested 10^5 levels is refused");
    }
    require(!accepted(R"({"a": 1, "a": 1})"), "a key twice in one object is refused");
    require(accepted(R"({"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]})"), "the same key in different objects is read");
    return true;
}();

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    require(limit_checked, "the limit was checked");
    nlohmann::json j;
    try {
        j = scribe::io::parse_json(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz/input.json");
    } catch (const scribe::error& e) {
        // Not JSON, nested too deep or a key twice: refused.
        fuzz::check_message(e);
        return 0;
    }
    require(fuzz::json_depth(j) <= scribe::io::json_depth_limit, "an accepted value nests at most json_depth_limit levels");
    std::string text;
    try {
        text = j.dump();
    } catch (const nlohmann::json::exception&) {
        fuzz::broken("an accepted value cannot be dumped");
    }
    try {
        require(scribe::io::parse_json(text, "fuzz/dumped.json") == j, "a dumped value parses back to itself");
    } catch (const scribe::error&) {
        fuzz::broken("a dumped value is refused by parse_json");
    }
    return 0;
}
