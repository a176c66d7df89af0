// io: the safetensors reader and writer, and checkpoint folders (single file and
// sharded). Every malformed file is refused with an error naming the file and,
// where there is one, the tensor.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <scribe/io/checkpoint.hpp>
#include <scribe/io/safetensors.hpp>

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_io {

using namespace scribe;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
    const auto d = fs::temp_directory_path() / ("scribe_test_io_" + std::to_string(::getpid())) / name;
    fs::create_directories(d.parent_path());
    return d;
}

// Writes raw bytes: an 8-byte length, the header text, then `data`.
void raw_file(const fs::path& p, const std::string& header, const std::string& data, std::int64_t claimed = -1) {
    std::ofstream out(p, std::ios::binary);
    const auto n = static_cast<std::uint64_t>(claimed < 0 ? static_cast<std::int64_t>(header.size()) : claimed);
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
    out << header << data;
}

std::string floats(int n) { return std::string(static_cast<std::size_t>(4 * n), '\1'); }

}  // namespace

TEST_CASE("io: a written safetensors file reads back in place, with its metadata") {
    const std::vector<float> a = {1, 2, 3, 4, 5, 6};
    const std::vector<std::uint16_t> b = {0x3c00, 0xc000};  // f16 1, -2
    const auto p = scratch("rt.safetensors");
    io::write_safetensors(p,
                          {{"a", dtype::f32, {2, 3}, {reinterpret_cast<const unsigned char*>(a.data()), 24}},
                           {"b.weight", dtype::f16, {2}, {reinterpret_cast<const unsigned char*>(b.data()), 4}}},
                          {{"format", "pt"}});
    io::safetensors f(p);
    REQUIRE(f.tensors().size() == 2);
    CHECK(f.metadata().at("format") == "pt");
    CHECK(f.entry("a").shape == std::vector<std::int64_t>{2, 3});
    CHECK(f.entry("b.weight").type == dtype::f16);
    float back[6];
    std::memcpy(back, f.bytes("a").data(), 24);
    CHECK(back[5] == 6.0f);
    CHECK(f16_bits_to_f32(static_cast<std::uint16_t>(f.bytes("b.weight")[0] | f.bytes("b.weight")[1] << 8)) == 1.0f);
    CHECK_THROWS_WITH(f.entry("c"), Catch::Contains("rt.safetensors: no tensor `c`"));
}

TEST_CASE("io: malformed safetensors files are refused with the file and tensor named") {
    const auto p = scratch("bad.safetensors");
    auto refuses = [&](const std::string& why) {
        CHECK_THROWS_WITH(io::safetensors(p), Catch::Contains(p.string()) && Catch::Contains(why));
    };
    const std::string good = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";

    SECTION("too short") {
        std::ofstream(p, std::ios::binary) << "abc";
        refuses("too short");
    }
    SECTION("header length past the end") {
        raw_file(p, good, floats(4), 1 << 20);
        refuses("runs past the end of the file");
    }
    SECTION("truncated data") {
        raw_file(p, good, floats(3));
        refuses("tensor `w` has bytes [0, 16) outside the data section of 12 bytes");
    }
    SECTION("not JSON") {
        raw_file(p, "{\"w\": [", floats(4));
        refuses("not valid JSON");
    }
    SECTION("unknown dtype") {
        raw_file(p, R"({"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", std::string(4, '\0'));
        refuses("tensor `w` has dtype \"F8_E4M3\"");
    }
    SECTION("shape and byte count disagree") {
        raw_file(p, R"({"w":{"dtype":"F32","shape":[3,2],"data_offsets":[0,16]}})", floats(4));
        refuses("tensor `w` is f32[3, 2], 24 bytes, but its data_offsets span 16");
    }
    SECTION("overlapping tensors") {
        raw_file(p, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                 floats(3));
        refuses("tensors `a` and `b` overlap");
    }
    SECTION("overlapping tensors whose names carry control characters") {
        // A C1 CSI (U+009B, 0xc2 0x9b in UTF-8) and an ESC (\u001b in the JSON): a
        // terminal would act on either.
        raw_file(p, "{\"\xc2\x9b[31ma\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                    "\"\\u001bb\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}",
                 "abc");
        refuses("tensors `\\xc2\\x9b[31ma` and `\\x1bb` overlap");
    }
    SECTION("a hole in the data") {
        raw_file(p, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                 floats(3));
        refuses("bytes [4, 8) of the data belong to no tensor");
    }
    SECTION("bytes after the last tensor") {
        raw_file(p, good, floats(5));
        refuses("bytes [16, 20) at the end of the data belong to no tensor");
    }
    SECTION("negative shape") {
        raw_file(p, R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", floats(1));
        refuses("tensor `w` has a shape entry that is not a non-negative integer");
    }
    SECTION("an empty tensor with impossibly large other extents") {
        raw_file(p, R"({"w":{"dtype":"F32","shape":[0,281474976710656,281474976710656],"data_offsets":[0,0]}})", "");
        refuses("tensor `w` has an impossibly large shape");
    }
    SECTION("an impossibly large shape") {
        raw_file(p, R"({"w":{"dtype":"F32","shape":[16777216,16777217],"data_offsets":[0,4]}})", floats(1));
        refuses("tensor `w` has an impossibly large shape");
    }
    SECTION("offsets reversed") {
        raw_file(p, R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", floats(2));
        refuses("tensor `w` has data_offsets [8, 4) that end before they begin");
    }
    SECTION("an unknown field") {
        raw_file(p, R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"scale":2}})", floats(1));
        refuses("tensor `w` has an unknown field `scale`");
    }
    SECTION("metadata that is not strings") {
        raw_file(p, R"({"__metadata__":{"n":3},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", floats(1));
        refuses("__metadata__ `n` is not a string");
    }
    SECTION("missing file") {
        fs::remove(p);
        refuses("cannot open");
    }
}

TEST_CASE("io: safetensors bytes in memory parse as the file does, with the given name in errors") {
    const std::vector<float> a = {1, 2, 3};
    const auto p = scratch("mem.safetensors");
    io::write_safetensors(p, {{"a", dtype::f32, {3}, {reinterpret_cast<const unsigned char*>(a.data()), 12}}}, {{"k", "v"}});
    std::ifstream in(p, std::ios::binary);
    const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    io::safetensors f(bytes, "in-memory");
    CHECK(f.path() == "in-memory");
    CHECK(f.metadata().at("k") == "v");
    REQUIRE(f.bytes("a").size() == 12);
    CHECK(f.bytes("a").data() != bytes.data() + (bytes.size() - 12));  // a copy: `bytes` may go away
    float back[3];
    std::memcpy(back, f.bytes("a").data(), 12);
    CHECK(back[2] == 3.0f);
    const auto mapping = f.mapping();
    CHECK(mapping->size() == bytes.size());

    CHECK_THROWS_WITH(io::safetensors(std::span<const unsigned char>{}, "empty"), Catch::Contains("empty: 0 bytes is too short"));
    auto truncated = bytes;
    truncated.pop_back();
    CHECK_THROWS_WITH(io::safetensors(truncated, "cut"), Catch::Contains("cut: tensor `a` has bytes [0, 12) outside the data section of 11 bytes"));
}

TEST_CASE("io: a sharded checkpoint maps each tensor to its shard; a wrong index is refused") {
    const auto dir = scratch("sharded");
    fs::create_directories(dir);
    const std::vector<float> a = {1, 2}, b = {3, 4, 5};
    io::write_safetensors(dir / "model-00001-of-00002.safetensors", {{"a", dtype::f32, {2}, {reinterpret_cast<const unsigned char*>(a.data()), 8}}});
    io::write_safetensors(dir / "model-00002-of-00002.safetensors", {{"b", dtype::f32, {3}, {reinterpret_cast<const unsigned char*>(b.data()), 12}}});
    std::ofstream(dir / "model.safetensors.index.json")
        << R"({"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})";
    io::checkpoint ck(dir);
    CHECK(ck.shards().size() == 2);
    CHECK(ck.entry("b").shape == std::vector<std::int64_t>{3});
    float v;
    std::memcpy(&v, ck.bytes("b").data() + 8, 4);
    CHECK(v == 5.0f);
    CHECK_THROWS_WITH(ck.entry("c"), Catch::Contains("the checkpoint has no tensor `c`"));

    std::ofstream(dir / "model.safetensors.index.json")
        << R"({"weight_map":{"a":"model-00002-of-00002.safetensors"}})";
    CHECK_THROWS_WITH(io::checkpoint(dir), Catch::Contains("tensor `a` is mapped to model-00002-of-00002.safetensors, which does not hold it"));
    std::ofstream(dir / "model.safetensors.index.json") << R"({"weight_map":{"a":"../x.safetensors"}})";
    CHECK_THROWS_WITH(io::checkpoint(dir), Catch::Contains("names a file outside the folder"));
    std::ofstream(dir / "model.safetensors.index.json") << R"({"weight_map": 3})";
    CHECK_THROWS_WITH(io::checkpoint(dir), Catch::Contains("no \"weight_map\" object"));
    CHECK_THROWS_WITH(io::checkpoint(scratch("empty_dir")), Catch::Contains("no model.safetensors"));
}

}  // namespace test_io
