// Hostile input, at the library's level: the JSON reader (depth, duplicate keys,
// messages that do not echo the input), regular files only, checked size
// arithmetic, the weight-file checks shared by every command, the memory plan
// checked before allocation, and non-finite logits. (tests/hostile/catalogue.py
// drives the same through the `scribe` program, case by case.)
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include <scribe/core/checked.hpp>
#include <scribe/cpu.hpp>
#include <scribe/io/json.hpp>
#include <scribe/models/gpt2.hpp>
#include <scribe/models/llama_config.hpp>
#include <scribe/runtime/decoder.hpp>

#include "../../bench/timing.hpp"  // the benchmarks' flag readers
#include "golden.hpp"

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_hostile {

using namespace scribe;
namespace fs = std::filesystem;
using Catch::Contains;

SCRIBE_DIM(rows);

namespace {

fs::path scratch(const std::string& name) {
    const auto d = fs::temp_directory_path() / ("scribe_test_hostile_" + std::to_string(::getpid())) / name;
    fs::remove_all(d);
    fs::create_directories(d.parent_path());
    return d;
}

std::string nested(int depth) { return std::string(static_cast<std::size_t>(depth), '[') + std::string(static_cast<std::size_t>(depth), ']'); }

// A copy of a tiny golden checkpoint to spoil.
fs::path copy_model(const std::string& model, const std::string& name) {
    const auto d = scratch(name);
    fs::copy(scribe_test::data / model, d, fs::copy_options::recursive);
    return d;
}

void set_config(const fs::path& dir, const std::string& key, const nlohmann::json& value) {
    std::ifstream in(dir / "config.json");
    auto j = nlohmann::json::parse(in);
    j[key] = value;
    std::ofstream(dir / "config.json") << j.dump();
}

}  // namespace

TEST_CASE("hostile: JSON nesting is bounded, where the limit was hit is said") {
    CHECK(io::parse_json(nested(io::json_depth_limit), "x.json").is_array());
    CHECK_THROWS_WITH(io::parse_json(nested(io::json_depth_limit + 1), "x.json"),
                      Contains("x.json: JSON nested deeper than 64 levels (at /[]/[]/"));
    CHECK_THROWS_WITH(io::parse_json(nested(100000), "deep.json"), Contains("deep.json: JSON nested deeper than 64 levels"));
    std::string objects;
    for (int i = 0; i < 70; ++i) objects += "{\"k" + std::to_string(i) + "\":";
    objects += "1" + std::string(70, '}');
    CHECK_THROWS_WITH(io::parse_json(objects, "cfg"), Contains("(at /k0/k1/k2/k3/k4/k5/k6/k7/...)"));
}

TEST_CASE("hostile: a key twice in one object is refused, naming it; the same key in two objects is fine") {
    CHECK_THROWS_WITH(io::parse_json(R"({"a": 1, "b": {"c": 1, "c": 2}})", "f.json"),
                      Contains("f.json: key \"c\" appears twice in one object (at /b/c)"));
    CHECK(io::parse_json(R"({"a": {"c": 1}, "b": {"c": 2}, "l": [{"c": 1}, {"c": 2}]})", "f.json")["b"]["c"] == 2);
}

TEST_CASE("hostile: parse errors and shown values do not echo the input's bytes") {
    try {
        (void)io::parse_json("{\"a\": SECRET_BYTES}", "f.json");
        FAIL("no error");
    } catch (const error& e) {
        CHECK_THAT(e.what(), Contains("f.json: not valid JSON") && !Contains("SECRET"));
    }
    CHECK(io::printable("a\x01\xff\\") == "a\\x01\\xff\\\\");
    CHECK(io::printable(std::string(100, 'x')).size() == 64 + 3);
    CHECK(io::shown(nlohmann::json::parse(R"({"k": [1, 2]})")) == "an object of 1 keys");
}

TEST_CASE("hostile: only regular files are opened, without blocking on a FIFO") {
    const auto dir = scratch("files");
    fs::create_directories(dir / "sub");
    REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
    CHECK_THROWS_WITH(io::read_text(dir / "fifo", 100, "the config"), Contains("fifo: the config is a FIFO, not a regular file"));
    CHECK_THROWS_WITH(io::read_text(dir / "sub", 100, "the config"), Contains("sub: the config is a directory, not a regular file"));
    CHECK_THROWS_WITH(io::read_text("/dev/zero", 100, "the tokenizer file"), Contains("is a character device, not a regular file"));
    CHECK_THROWS_WITH(io::read_text(dir / "none", 100, "the config"), Contains("none: cannot open the config: no such file"));
    std::ofstream(dir / "big") << std::string(200, 'x');
    CHECK_THROWS_WITH(io::read_text(dir / "big", 100, "the config"), Contains("big: the config is 200 bytes, more than the 100"));
    fs::create_symlink(dir / "big", dir / "link");  // the Hugging Face cache is made of symlinks
    CHECK(io::read_text(dir / "link", 1000, "the config").size() == 200);
}

TEST_CASE("hostile: size arithmetic from outside values overflows into an error naming it") {
    const auto big = std::numeric_limits<std::int64_t>::max() / 2;
    CHECK(checked::mul(std::int64_t{3}, std::int64_t{4}, "x") == 12);
    CHECK_THROWS_WITH(checked::mul(big, std::int64_t{3}, "the KV cache's bytes"), Contains("the KV cache's bytes: ") && Contains("too large"));
    CHECK_THROWS_WITH(checked::add(std::uint64_t{~0ull}, std::uint64_t{1}, "total"), Contains("total: "));
    CHECK(checked::shown(1e-300) == "1e-300");
    CHECK_THROWS_WITH(element_count(shape{{"batch", std::int64_t{1} << 40}, {"cache", std::int64_t{1} << 40}}),
                      Contains("shape [batch=1099511627776, cache=1099511627776] has too many elements"));
}

TEST_CASE("hostile: config integers are bounded before any arithmetic sees them") {
    for (const auto& bad : {nlohmann::json(std::int64_t{1} << 31), nlohmann::json(-1), nlohmann::json(1.5), nlohmann::json(1e300),
                            nlohmann::json("12"), nlohmann::json(std::numeric_limits<std::uint64_t>::max())}) {
        auto j = nlohmann::json::parse(R"({"vocab_size": 10, "n_positions": 8, "n_embd": 4, "n_layer": 1, "n_head": 2})");
        j["n_embd"] = bad;
        CHECK_THROWS_WITH(models::gpt2::config::parse(j, "c.json"), Contains("c.json: field `n_embd` must be a positive integer below 2^31"));
    }
}

TEST_CASE("hostile: rope parameters that give non-finite frequencies are refused at load") {
    auto j = nlohmann::json::parse(R"({"vocab_size": 10, "max_position_embeddings": 8, "hidden_size": 8, "intermediate_size": 8,
                                       "num_hidden_layers": 1, "num_attention_heads": 2, "rope_theta": 1e-300})");
    CHECK_THROWS_WITH(models::llama::config::parse(j, "c.json"), Contains("c.json: rope parameters") && Contains("finite, positive"));
    j["rope_theta"] = 10000.0;
    j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8}, {"original_max_position_embeddings", 1e300}};
    CHECK_THROWS_WITH(models::llama::config::parse(j, "c.json"), Contains("c.json: rope field `original_max_position_embeddings` must be a whole number of positions below 2^31, got 1e+300"));
}

TEST_CASE("hostile: a config with more layers than the checkpoint has tensors is refused before a weight list is made") {
    const auto dir = copy_model("gpt2-tiny-a", "layers");
    set_config(dir, "n_layer", 1000000000);
    CHECK_THROWS_WITH((runtime::decoder<models::gpt2_family>(dir, {.threads = 1})),
                      Contains("the config has 1000000000 layers, but the checkpoint holds only"));
}

TEST_CASE("hostile: a pre-sharded folder is run at its own degree, complete") {
    const auto src = scribe_test::data / "gpt2-tiny-a";
    const auto dir = scratch("presharded");
    {
        runtime::decoder<models::gpt2_family> lm(src, {.threads = 1, .tp = 2});
        lm.save_sharded(dir);
    }
    fs::copy_file(src / "config.json", dir / "config.json");
    CHECK_THROWS_WITH((runtime::decoder<models::gpt2_family>(dir, {.threads = 1, .tp = 4})),
                      Contains("pre-sharded for tensor-parallel degree 2") && Contains("give --tp 2 (this run asked for 4)"));
    CHECK_THROWS_WITH((runtime::decoder<models::gpt2_family>(dir, {.threads = 1})), Contains("asked for 1"));
    fs::remove(runtime::rank_file(dir, 2, 1));
    CHECK_THROWS_WITH((runtime::decoder<models::gpt2_family>(dir, {.threads = 1, .tp = 2})),
                      Contains("model.tp2-rank1.safetensors (rank 1) is missing"));
}

TEST_CASE("hostile: an empty weight_map is named as such") {
    const auto dir = copy_model("gpt2-tiny-a", "empty_map");
    fs::remove(dir / "model.safetensors");
    std::ofstream(dir / "model.safetensors.index.json") << R"({"metadata": {}, "weight_map": {}})";
    CHECK_THROWS_WITH(io::checkpoint(dir), Contains("model.safetensors.index.json: the \"weight_map\" is empty"));
}

TEST_CASE("hostile: the memory plan is checked before anything is allocated") {
    runtime::decoder<models::gpt2_family> lm(scribe_test::data / "gpt2-tiny-a", {.threads = 1});
    const auto p = lm.memory(std::int64_t{1} << 30, 64);
    CHECK_THROWS_WITH(runtime::check_memory(p, std::int64_t{1} << 30, 64, dtype::f32, 1, 0),
                      Contains("more than this machine's") && Contains("batch 1073741824, 64 positions"));
    CHECK_THROWS_WITH(runtime::check_memory(p, std::int64_t{1} << 30, 64, dtype::f32, 1, 1 << 20), Contains("but the budget is 1.0 MiB"));
    CHECK_NOTHROW(runtime::check_memory(lm.memory(1, 64), 1, 64, dtype::f32, 1, 0));
    runtime::decoder<models::gpt2_family> small(scribe_test::data / "gpt2-tiny-a", {.threads = 1, .memory_budget = 1 << 20});
    CHECK_THROWS_WITH(small.generate(std::vector<std::vector<std::int32_t>>(64, {1, 2}), {.max_new_tokens = 2}),
                      Contains("memory: each of the 1 rank(s) would need") && Contains("batch 64"));
}

TEST_CASE("hostile: max_new_tokens near 2^63 does not wrap the length check") {
    runtime::decoder<models::gpt2_family> lm(scribe_test::data / "gpt2-tiny-a", {.threads = 1});
    CHECK_THROWS_WITH(lm.generate({{1, 2, 3}}, {.max_new_tokens = std::numeric_limits<std::int64_t>::max() - 1}),
                      Contains("new tokens exceeds the model's 64 positions; ask for at most 61"));
}

TEST_CASE("hostile: non-finite logits stop generation with the step named; check_finite names the weight") {
    const auto dir = copy_model("gpt2-tiny-a", "nan");
    {
        io::safetensors f(dir / "model.safetensors");
        std::vector<io::tensor_to_write> all;
        std::vector<std::vector<unsigned char>> keep;
        for (const auto& e : f.tensors()) {
            auto b = f.bytes(e.name);
            keep.emplace_back(b.begin(), b.end());
            if (e.name.ends_with("h.1.mlp.c_proj.weight")) {
                const float nan = std::numeric_limits<float>::quiet_NaN();
                for (std::size_t i = 0; i + 4 <= keep.back().size(); i += 4) std::memcpy(keep.back().data() + i, &nan, 4);
            }
            all.push_back({e.name, e.type, e.shape, {keep.back().data(), keep.back().size()}});
        }
        io::write_safetensors(dir / "model.tmp", all);
    }
    fs::rename(dir / "model.tmp", dir / "model.safetensors");
    {
        runtime::decoder<models::gpt2_family> lm(dir, {.threads = 1});
        CHECK_THROWS_WITH(lm.generate({{1, 2}}, {.max_new_tokens = 3}),
                          Contains("generate: the logits of sequence 0 at step 0 (prefill) are not finite"));
    }
    runtime::decoder<models::gpt2_family> lm(dir, {.threads = 1, .check_finite = true});
    CHECK_THROWS_WITH(lm.generate({{1, 2}}, {.max_new_tokens = 3}), Contains("input `h.1.mlp.c_proj.weight` holds a non-finite value"));
}

TEST_CASE("hostile: check_finite names the first node that makes a non-finite value and the weights it reads") {
    graph g("overflow");
    g.bind(rows(4));
    auto w = g.parameter(f32[rows], "layer.3.weight");
    auto x = g.parameter(f32[rows], "x");
    g.outputs(exp(w * x));
    cpu::executor e(g, {.threads = 1, .check_finite = true});
    const std::vector<float> a{1, 2, 3, 4}, b{1, 1, 100, 1};
    CHECK_THROWS_WITH(e({cpu::array::borrow(dtype::f32, {{"rows", 4}}, a.data(), 16), cpu::array::borrow(dtype::f32, {{"rows", 4}}, b.data(), 16)}),
                      Contains("the first non-finite value") && Contains("element 2") && Contains("`layer.3.weight`"));
}

TEST_CASE("hostile: tokens past vocab_limit are never chosen") {
    runtime::decoder<models::gpt2_family> lm(scribe_test::data / "gpt2-tiny-a", {.threads = 1});
    const auto out = lm.generate({{1, 2}}, {.max_new_tokens = 20, .sample = {.temperature = 5.0, .seed = 3}, .stop_at_eos = false,
                                            .vocab_limit = 7});
    for (auto t : out.tokens[0]) CHECK(t < 7);
    CHECK_THROWS_WITH(lm.generate({{1}}, {.max_new_tokens = 2, .vocab_limit = 1 << 20}), Contains("vocab_limit 1048576 must be between 0"));
}

TEST_CASE("hostile: a q8 rank file with a bad block scale, a missing or misshapen part, or an unknown format is refused, named") {
    const auto src = scribe_test::data / "quant" / "gpt2-q8";
    const auto dir = scratch("q8_shard");
    {
        runtime::decoder<models::gpt2_family> lm(src, {.weights = models::weight_format::q8, .threads = 1, .tp = 2});
        lm.save_sharded(dir);
    }
    fs::copy_file(src / "config.json", dir / "config.json");
    const auto good = fs::path(dir.string() + ".good");
    fs::remove_all(good);
    fs::copy(dir, good, fs::copy_options::recursive);
    // Rewrites rank r's file: `spoil(name, type, shape, bytes)` may change a tensor
    // (false drops it); `meta` replaces the metadata.
    using spoil_fn = std::function<bool(const std::string&, dtype&, std::vector<std::int64_t>&, std::vector<unsigned char>&)>;
    auto rewrite = [&](int r, const spoil_fn& spoil, std::map<std::string, std::string> meta) {
        fs::remove_all(dir);
        fs::copy(good, dir, fs::copy_options::recursive);
        struct kept {
            std::string name;
            dtype type;
            std::vector<std::int64_t> shape;
            std::vector<unsigned char> bytes;
        };
        std::vector<kept> keep;
        {
            const io::safetensors f(runtime::rank_file(good, 2, r));
            if (meta.empty()) meta = f.metadata();
            for (const auto& e : f.tensors()) {
                const auto b = f.bytes(e.name);
                kept t{e.name, e.type, e.shape, {b.begin(), b.end()}};
                if (spoil(t.name, t.type, t.shape, t.bytes)) keep.push_back(std::move(t));
            }
        }
        std::vector<io::tensor_to_write> all;
        for (const auto& t : keep) all.push_back({t.name, t.type, t.shape, {t.bytes.data(), t.bytes.size()}});
        io::write_safetensors(runtime::rank_file(dir, 2, r), all, meta);
    };
    auto load = [&]() -> std::string {
        try {
            runtime::decoder<models::gpt2_family> lm(dir, {.weights = models::weight_format::q8, .threads = 1, .tp = 2});
        } catch (const scribe::error& e) {
            return e.what();
        }
        return "(loaded)";
    };
    const std::string w = "h.0.mlp.c_fc.weight";
    auto none = [](const std::string&, dtype&, std::vector<std::int64_t>&, std::vector<unsigned char>&) { return true; };
    rewrite(1, none, {});
    CHECK(load() == "(loaded)");
    // A NaN block scale (f16 0x7e00) in rank 1's part.
    rewrite(1, [&](const std::string& n, dtype&, std::vector<std::int64_t>&, std::vector<unsigned char>& b) {
        if (n == q8::scale_name(w)) b[6] = 0x00, b[7] = 0x7e;
        return true;
    }, {});
    CHECK_THAT(load(), Contains("model.tp2-rank1.safetensors: tensor `h.0.mlp.c_fc.weight.scale` holds a NaN or an infinity (block 3)"));
    // The scales missing.
    rewrite(0, [&](const std::string& n, dtype&, std::vector<std::int64_t>&, std::vector<unsigned char>&) { return n != q8::scale_name(w); }, {});
    CHECK_THAT(load(), Contains("model.tp2-rank0.safetensors: tensor `h.0.mlp.c_fc.weight.scale` is missing (rank 0 of a GPT-2 with 2 layers, in q8, needs it)"));
    // q stored as U8 instead of I8.
    rewrite(0, [&](const std::string& n, dtype& t, std::vector<std::int64_t>&, std::vector<unsigned char>&) {
        if (n == w) t = dtype::u8;
        return true;
    }, {});
    CHECK_THAT(load(), Contains("tensor `h.0.mlp.c_fc.weight` is u8[") && Contains("rank 0's part in q8 needs s8["));
    // An unknown weight format, and rank files that disagree.
    rewrite(0, none, {{"scribe.tp_degree", "2"}, {"scribe.rank", "0"}, {"scribe.weights", "q5"}});
    CHECK_THAT(load(), Contains("__metadata__ says scribe.weights \"q5\"; Scribe knows \"q8\" and \"q4\""));
    // A rank file that says q4 next to rank 0's q8.
    rewrite(1, none, {{"scribe.tp_degree", "2"}, {"scribe.rank", "1"}, {"scribe.weights", "q4"}});
    CHECK_THAT(load(), Contains("model.tp2-rank1.safetensors: q4 weights, but rank 0's file holds q8 ones"));
    rewrite(1, none, {{"scribe.tp_degree", "2"}, {"scribe.rank", "1"}});
    CHECK_THAT(load(), Contains("model.tp2-rank1.safetensors: float weights, but rank 0's file holds q8 ones"));
    fs::remove_all(good);
}

TEST_CASE("hostile: the benchmarks' number flags read the whole value and refuse what is out of range, naming flag and value") {
    CHECK(bench::parse_count("16", "--steps", "b", 1, 100) == 16);
    CHECK(bench::parse_count("1e2", "--steps", "b", 1, 100) == 100);
    for (const char* bad : {"3x", "x", "", "0", "101", "2.5", "-1", "nan", "inf", "1e999"})
        CHECK_THROWS_WITH(bench::parse_count(bad, "--steps", "b", 1, 100), Contains("b: --steps takes a") && Contains("\"" + std::string(bad) + "\""));
    CHECK(bench::parse_positive("0.5", "--budget", "b") == 0.5);
    for (const char* bad : {"0", "-1", "nan", "inf", "1e999", "2s", ""})
        CHECK_THROWS_WITH(bench::parse_positive(bad, "--budget", "b"), Contains("b: --budget takes a") && Contains("\"" + std::string(bad) + "\""));
}

}  // namespace test_hostile
