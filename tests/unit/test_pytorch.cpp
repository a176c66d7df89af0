// pytorch_model.bin (torch.save's zip archive of a state dict): the files in
// tests/data/pytorch were written by torch itself (scripts/reference/
// make_pytorch_checkpoints.py), each with a safetensors copy of the same tensors
// written by the safetensors library. Scribe's reader must give every tensor's
// dtype, shape and bytes exactly as the copy holds them, and a model folder with
// only pytorch_model.bin (or its shards) must run as its safetensors twin does.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <scribe/io/checkpoint.hpp>
#include <scribe/io/pytorch.hpp>
#include <scribe/io/safetensors.hpp>
#include <scribe/models/registry.hpp>
#include <scribe/runtime/decoder.hpp>

#include "golden.hpp"

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_pytorch {

using namespace scribe;
using Catch::Matchers::Contains;
using scribe_test::data;

namespace {

const auto pt = data / "pytorch";

// Every tensor of `expected` is in `got` with the same dtype, shape and bytes, and `got` holds no other.
template <class A, class B>
void check_same_tensors(const A& got, const B& expected, const std::vector<std::string>& got_names) {
    std::set<std::string> names(got_names.begin(), got_names.end());
    for (const auto& e : expected.tensors()) {
        INFO("tensor " << e.name);
        REQUIRE(got.contains(e.name));
        const auto& g = got.entry(e.name);
        CHECK(g.type == e.type);
        CHECK(g.shape == e.shape);
        const auto a = got.bytes(e.name);
        const auto b = expected.bytes(e.name);
        REQUIRE(a.size() == b.size());
        CHECK(std::equal(a.begin(), a.end(), b.begin()));
        names.erase(e.name);
    }
    CHECK(names.empty());
}

std::vector<std::string> names_of(const io::tensor_file& f) {
    std::vector<std::string> out;
    for (const auto& e : f.tensors()) out.push_back(e.name);
    return out;
}

std::vector<unsigned char> read_bytes(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("pytorch: every view a state dict may hold reads as torch's contiguous copy, at protocols 2 and 4") {
    const io::safetensors expected(pt / "views.safetensors");
    for (const auto* file : {"views.bin", "views-p2.bin"}) {
        INFO(file);
        const io::pytorch_file f(pt / file);
        check_same_tensors(f, expected, names_of(f));
        // Contiguous views are read in place in the mapping; the strided ones are copies.
        const auto map = f.mapping()->bytes();
        auto in_map = [&](const char* n) { return f.bytes(n).data() >= map.data() && f.bytes(n).data() < map.data() + map.size(); };
        CHECK(in_map("rows"));
        CHECK(in_map("shared.a"));
        CHECK(in_map("param"));
        CHECK_FALSE(in_map("transposed"));
        CHECK_FALSE(in_map("expanded"));
        CHECK(f.bytes("shared.b").data() - f.bytes("shared.a").data() == 25 * 8);  // one storage, elements 5 and 30
    }
}

TEST_CASE("pytorch: bytes in memory parse as the file does; a cut or legacy file is refused by name") {
    const auto bytes = read_bytes(pt / "views.bin");
    const io::pytorch_file whole(bytes, "in-memory.bin");
    CHECK(whole.tensors().size() == io::pytorch_file(pt / "views.bin").tensors().size());
    const std::vector<unsigned char> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(bytes.size() / 2));
    CHECK_THROWS_WITH(io::pytorch_file(cut, "cut.bin"), Contains("cut.bin") && Contains("no end-of-central-directory record"));
    CHECK_THROWS_WITH(io::pytorch_file(pt / "legacy.bin"), Contains("legacy.bin") && Contains("legacy format"));
    CHECK_THROWS_WITH(io::pytorch_file(pt / "views.safetensors"), Contains("views.safetensors: not a zip archive"));
    // data.pkl's bytes changed: its CRC no longer matches.
    auto damaged = bytes;
    const std::string marker = "transposed";
    const auto at = std::search(damaged.begin(), damaged.end(), marker.begin(), marker.end());
    REQUIRE(at != damaged.end());
    *at = 'T';
    CHECK_THROWS_WITH(io::pytorch_file(damaged, "damaged.bin"), Contains("damaged.bin: data.pkl does not match its CRC-32"));
}

TEST_CASE("pytorch: a GPT-2 folder with only pytorch_model.bin (tied weights) runs as its safetensors twin") {
    const io::checkpoint ck(pt / "gpt2-bin");
    CHECK(ck.source().filename() == "pytorch_model.bin");
    const io::safetensors twin(data / "gpt2-tiny-a" / "model.safetensors");
    std::vector<std::string> names;
    for (const auto& n : ck.names())
        if (n != "lm_head.weight") names.push_back(n);
    check_same_tensors(ck, twin, names);
    // lm_head.weight is the token embedding's storage, read once.
    CHECK(ck.bytes("lm_head.weight").data() == ck.bytes("transformer.wte.weight").data());

    runtime::decoder<models::gpt2_family> from_bin(pt / "gpt2-bin", {.type = dtype::f32, .threads = 1, .tp = 2});
    runtime::decoder<models::gpt2_family> from_st(data / "gpt2-tiny-a", {.type = dtype::f32, .threads = 1, .tp = 2});
    const std::vector<std::int32_t> ids = {5, 17, 3, 99, 42, 7};
    CHECK(from_bin.prompt_logits(ids) == from_st.prompt_logits(ids));
}

TEST_CASE("pytorch: a sharded bf16 LLaMA (pytorch_model.bin.index.json) reads as its safetensors copy and runs the same") {
    const io::checkpoint ck(pt / "llama-bin-sharded");
    CHECK(ck.shards().size() == 2);
    const io::safetensors copy(pt / "llama-bf16.safetensors");
    check_same_tensors(ck, copy, ck.names());

    // The same tensors as a safetensors folder: the logits are bit for bit the same.
    const auto twin = std::filesystem::temp_directory_path() / ("scribe-pytorch-twin-" + std::to_string(::getpid()));
    std::filesystem::remove_all(twin);
    std::filesystem::create_directories(twin);
    for (const auto* f : {"config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"})
        std::filesystem::copy_file(pt / "llama-bin-sharded" / f, twin / f);
    std::filesystem::copy_file(pt / "llama-bf16.safetensors", twin / "model.safetensors");
    for (const std::int64_t tp : {1, 2}) {
        INFO("TP " << tp);
        runtime::decoder<models::llama_family> from_bin(pt / "llama-bin-sharded", {.type = dtype::bf16, .threads = 1, .tp = tp});
        runtime::decoder<models::llama_family> from_st(twin, {.type = dtype::bf16, .threads = 1, .tp = tp});
        const std::vector<std::int32_t> ids = {1, 20, 33, 4, 60};
        CHECK(from_bin.prompt_logits(ids) == from_st.prompt_logits(ids));
    }
    std::filesystem::remove_all(twin);
}

}  // namespace test_pytorch
