// Compiled artifacts (runtime/artifact.hpp, runtime/compile.hpp): a decoder
// loaded from an artifact must compute exactly what the folder it was compiled
// from computes (the same converted weights, the same packs, the same kernels),
// having packed nothing; it must keep working when the folder moves; and an
// artifact that does not fit (other options, another format version, another
// CPU's kernels, a config changed after compiling, a damaged pack) is refused
// with the command that compiles it again.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include <scribe/cpu/packs.hpp>
#include <scribe/io/safetensors.hpp>
#include <scribe/models/registry.hpp>
#include <scribe/runtime/compile.hpp>
#include <scribe/runtime/decoder.hpp>

#include "golden.hpp"

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_artifact {

using namespace scribe;
using Catch::Matchers::Contains;
using scribe_test::data;

namespace {

struct scratch {
    std::filesystem::path dir;
    explicit scratch(const std::string& name)
        : dir(std::filesystem::temp_directory_path() / ("scribe-artifact-" + name + "-" + std::to_string(::getpid()))) {
        std::filesystem::remove_all(dir);
    }
    ~scratch() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

nlohmann::json read_json(const std::filesystem::path& p) { return nlohmann::json::parse(std::ifstream(p)); }
void write_json(const std::filesystem::path& p, const nlohmann::json& j) { std::ofstream(p) << j.dump(2); }

const std::vector<std::int32_t> prompt = {5, 17, 3, 9, 12, 1, 7};

template <class Family>
void same_as_folder(const std::string& model, dtype type, std::int64_t tp) {
    INFO(model << " " << name(type) << " tp " << tp);
    scratch art(model);
    const auto a = runtime::compile<Family>(data / model, art.dir, {.tp = tp, .type = type, .buckets = {8, 16}}, {.threads = 1});
    CHECK(a.options.buckets == std::vector<std::int64_t>{8, 16});
    REQUIRE(runtime::is_artifact(art.dir));
    const runtime::generate_options go{.max_new_tokens = 12, .sample = {.temperature = 0}, .stop_at_eos = false};

    runtime::decoder<Family> folder(data / model, {.type = type, .threads = 1, .buckets = {8, 16}, .tp = tp});
    const auto expected = folder.generate({prompt}, go);
    CHECK(folder.packed_bytes() > 0);

    runtime::decoder<Family> compiled(art.dir, {.type = type, .threads = 1, .tp = tp});
    REQUIRE(compiled.compiled().has_value());
    CHECK(compiled.buckets() == std::vector<std::int64_t>{8, 16});  // the artifact's
    const auto got = compiled.generate({prompt}, go);
    CHECK(got.tokens == expected.tokens);
    CHECK(got.bucket == expected.bucket);
    // Nothing was packed: every pack the graphs read came from the artifact.
    CHECK(compiled.packed_bytes() == 0);
    CHECK(compiled.borrowed_pack_bytes() == folder.packed_bytes());
    CHECK(compiled.converted_bytes() == 0);
    CHECK(compiled.resident_bytes() > 0);  // decode's rows, copied into 2 MiB pages
    // And every logit is the folder's, bit for bit (all positions: the head's
    // panels for many rows are packed now, on first use, in both).
    const auto lf = folder.prompt_logits(prompt), lc = compiled.prompt_logits(prompt);
    CHECK(lf == lc);

    // Moved elsewhere, it still loads and runs.
    const auto moved = art.dir.string() + "-moved";
    std::filesystem::rename(art.dir, moved);
    {
        // (Read in place: nothing copied at all.)
        runtime::decoder<Family> again(moved, {.type = type, .threads = 1, .tp = tp, .keep_mapped = true});
        CHECK(again.generate({prompt}, go).tokens == expected.tokens);
        CHECK(again.packed_bytes() == 0);
        CHECK(again.resident_bytes() == 0);
    }
    std::filesystem::rename(moved, art.dir);
}

}  // namespace

TEST_CASE("a compiled artifact runs as its folder does, packing nothing, and moves", "[artifact]") {
    same_as_folder<models::gpt2_family>("gpt2-tiny-a", dtype::f32, 1);
    same_as_folder<models::gpt2_family>("gpt2-tiny-a", dtype::bf16, 2);
    // LLaMA's projections are stored [out, in]: decode's rows are those of the
    // mapped weight, copied into the pack.
    same_as_folder<models::llama_family>("llama-tiny-gqa", dtype::bf16, 1);
    same_as_folder<models::llama_family>("llama-tiny-gqa", dtype::f16, 2);
}

TEST_CASE("artifacts that do not fit are refused with the command that compiles them again", "[artifact]") {
    using family = models::gpt2_family;
    scratch art("refused");
    (void)runtime::compile<family>(data / "gpt2-tiny-a", art.dir, {.tp = 2, .type = dtype::bf16, .batch = 2}, {.threads = 1});
    const auto load = [&](runtime::load_options o = {.type = dtype::bf16, .threads = 1, .tp = 2}) {
        runtime::decoder<family> lm(art.dir, o);
        (void)lm.generate({prompt}, {.max_new_tokens = 3, .sample = {.temperature = 0}});
    };
    REQUIRE_NOTHROW(load());
    const auto again = "scribe compile " + (data / "gpt2-tiny-a").string() + " --out " + art.dir.string() + " --tp 2 --dtype bf16";

    SECTION("other options") {
        CHECK_THROWS_WITH(load({.threads = 1, .tp = 2}), Contains("is compiled for --tp 2 --dtype bf16, not --tp 2 --dtype f32"));
        CHECK_THROWS_WITH(load({.type = dtype::bf16, .threads = 1, .tp = 1}), Contains("not --tp 1 --dtype bf16"));
    }
    const auto desc = art.dir / "artifact.json";
    auto j = read_json(desc);
    SECTION("another format version") {
        j["version"] = 0;
        write_json(desc, j);
        CHECK_THROWS_WITH(load(), Contains("artifact format version 0, but this Scribe reads version 1") && Contains(again));
    }
    SECTION("another CPU's kernels") {
        // Kernels other than this CPU's: AVX2's where it has AVX-512, else AVX-512's.
        const std::string other = runtime::machine_key().find("avx512") != std::string::npos
                                      ? "gemm avx2 6x16 kc 256; bf16 products in f32 panels"
                                      : "gemm avx512 8x48 kc 256; bf16 products in bf16 pairs";
        j["machine"] = other;
        write_json(desc, j);
        CHECK_THROWS_WITH(load(), Contains("compiled for another CPU's kernels") && Contains(other.substr(5, 11)) && Contains(again));
    }
    SECTION("a config changed after compiling") {
        auto c = read_json(art.dir / "config.json");
        c["layer_norm_epsilon"] = 1e-3;
        write_json(art.dir / "config.json", c);
        CHECK_THROWS_WITH(load(), Contains("its key does not match config.json") && Contains(again));
    }
    SECTION("options changed in artifact.json") {
        j["batch"] = 4;
        write_json(desc, j);
        CHECK_THROWS_WITH(load(), Contains("its key does not match"));
    }
    SECTION("a missing pack file") {
        std::filesystem::remove(runtime::pack_file(art.dir, 2, 1));
        CHECK_THROWS_WITH(load(), Contains("packs.tp2-rank1.safetensors is missing") && Contains(again));
    }
    SECTION("a pack of the wrong size") {
        const auto path = runtime::pack_file(art.dir, 2, 0);
        std::vector<std::vector<unsigned char>> keep;
        std::vector<io::tensor_to_write> tensors;
        std::string cut;
        {
            const io::safetensors f(path);
            for (const auto& e : f.tensors()) {
                const auto b = f.bytes(e.name);
                auto bytes = std::vector<unsigned char>(b.begin(), b.end());
                auto shape = e.shape;
                // One panel pack (f32 panels, or u32 bf16 pairs on a CPU with AVX512_BF16), 4 bytes short.
                if (cut.empty() && (e.type == dtype::f32 || e.type == dtype::u32) && shape.size() == 1) {
                    cut = e.name;
                    bytes.resize(bytes.size() - 4);
                    shape = {shape[0] - 1};
                }
                keep.push_back(std::move(bytes));
                tensors.push_back({e.name, e.type, shape, {keep.back().data(), keep.back().size()}});
            }
            auto meta = f.metadata();
            io::write_safetensors(path.string() + ".new", tensors, meta, 64);
        }
        std::filesystem::rename(path.string() + ".new", path);
        REQUIRE(!cut.empty());
        CHECK_THROWS_WITH(load(), Contains("pack `" + cut + "`") && Contains("bytes, but the packed form"));
    }
    SECTION("packs of another rank") {
        std::filesystem::copy_file(runtime::pack_file(art.dir, 2, 0), runtime::pack_file(art.dir, 2, 1),
                                   std::filesystem::copy_options::overwrite_existing);
        CHECK_THROWS_WITH(load(), Contains("not the packs of rank 1 of 2"));
    }
}

TEST_CASE("executors sharing weight_packs pack each weight once", "[artifact]") {
    using family = models::gpt2_family;
    // Three prefill buckets and decode: one set of packs, not one per graph.
    runtime::decoder<family> one(data / "gpt2-tiny-a", {.threads = 1, .buckets = {8, 16, 32}});
    (void)one.prefill_graph(8, 8, 1, true);
    const auto after_one = one.packed_bytes();
    CHECK(after_one > 0);
    (void)one.prefill_graph(16, 16, 1, true);
    (void)one.prefill_graph(32, 32, 1, true);
    CHECK(one.packed_bytes() == after_one);

    // A weight_packs gives the pack it made to every caller, and refuses a
    // second array under a name it has packed.
    cpu::weight_packs packs;
    const cpu::kernels::pack_plan plan{.kind = cpu::kernels::pack_plan::form::f32_panels, .type = dtype::f32, .k = 4, .n = 3, .sbk = 3, .sbn = 1};
    const cpu::array a(dtype::f32, {{"k", 4}, {"n", 3}}), b(dtype::f32, {{"k", 4}, {"n", 3}});
    const auto p = packs.get("w", plan, a);
    CHECK(packs.get("w", plan, a) == p);
    CHECK(packs.made_bytes() == plan.bytes());
    CHECK_THROWS_WITH(packs.get("w", plan, b), Contains("weight `w` is bound to another array"));
}

}  // namespace test_artifact
