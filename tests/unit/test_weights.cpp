// Weights in and out of the library: each family's one declaration of its weights
// (the weight list and the graphs' parameters), the initial weights of training
// from scratch, the Hugging Face writer and its atomic files, and dropout.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <scribe/cpu.hpp>
#include <scribe/models/registry.hpp>
#include <scribe/runtime/decoder.hpp>
#include <scribe/runtime/save.hpp>
#include <scribe/runtime/trainer.hpp>
#include <scribe/runtime/weight_files.hpp>
#include <scribe/train/causal_lm.hpp>
#include <scribe/train/init.hpp>

#include "golden.hpp"

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_weights {

using namespace scribe;
using Catch::Matchers::Contains;
using scribe_test::data;
namespace fs = std::filesystem;

namespace {

SCRIBE_DIM(rows);
SCRIBE_DIM(cols);

const std::vector<std::string> models_dirs = {"gpt2-tiny-a", "gpt2-tiny-b", "gptj-tiny",   "llama-tiny-gqa",
                                              "llama-tiny-mqa", "mistral-tiny", "opt-tiny", "opt-tiny-post"};

// A fresh, empty folder under the system's temporary one.
fs::path scratch(const std::string& name) {
    const auto dir = fs::temp_directory_path() / ("scribe_test_weights_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

std::string read_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

double mean_of(std::span<const float> v) {
    double s = 0;
    for (auto x : v) s += x;
    return s / static_cast<double>(v.size());
}
double std_of(std::span<const float> v) {
    const double m = mean_of(v);
    double s = 0;
    for (auto x : v) s += (x - m) * (x - m);
    return std::sqrt(s / static_cast<double>(v.size()));
}

}  // namespace

TEST_CASE("declarations: each family's weight list is its graphs' weight parameters, at TP 1 and 2") {
    for (const auto& model : models_dirs) {
        INFO(model);
        models::with_family(data / model, [&]<class Family>() {
            const auto c = Family::config::load(data / model / "config.json");
            for (const std::int64_t tp : {1, 2}) {
                INFO("tp " << tp);
                const auto specs = Family::weights(c, tp);
                graph g("prefill");
                Family::template build<f32>(g, c, {.batch = 1, .seq = 4, .capacity = 8, .tp = tp});
                std::set<std::string> names;
                for (const auto& s : specs) {
                    INFO(s.name);
                    CHECK(names.insert(s.name).second);
                    const auto id = g.find_parameter(s.name);
                    REQUIRE(id);
                    // The graph's parameter is the rank's part of the declared whole.
                    CHECK(g[*id].dims == parallel::shard_shape(s.dims, s.split, tp));
                    CHECK(checked::product(s.stored, s.name) == element_count(s.dims));
                    if (!s.split.empty())
                        CHECK(std::any_of(s.dims.begin(), s.dims.end(), [&](const dim_extent& d) { return d.name == s.split; }));
                }
                // Every other parameter is an input of the step: ids, lengths and the caches.
                CHECK(static_cast<std::size_t>(g.parameter_count()) == specs.size() + 2 + 2 * static_cast<std::size_t>(c.n_layer));
            }
        });
    }
}

TEST_CASE("declarations: the stored shape merges runs of dims; a wrong split or run is refused") {
    graph g("w");
    g.bind(rows(6), cols(4));
    std::vector<models::weight_spec> list;
    models::declaration d(g, &list);
    (void)d(f32[rows, cols], "merged", {.split = "rows", .stored = {2}});
    (void)d(f32[rows, cols], "plain", {.init = models::zeros});
    REQUIRE(list.size() == 2);
    CHECK(list[0].stored == std::vector<std::int64_t>{24});
    CHECK(list[0].split == "rows");
    CHECK(list[1].stored == std::vector<std::int64_t>{6, 4});
    CHECK(list[1].init.kind == models::weight_init::fill::zeros);
    CHECK_THROWS_WITH(d(f32[rows, cols], "a", {.split = "heads"}), Contains("split dim `heads` is not one of its dims"));
    CHECK_THROWS_WITH(d(f32[rows, cols], "b", {.stored = {1}}), Contains("stored runs do not cover its dims"));
    CHECK_THROWS_WITH(d(f32[rows, cols], "c", {.stored = {1, 2}}), Contains("stored runs do not cover its dims"));
    CHECK_THROWS_WITH(d(f32[rows, cols], "d", {.stored = {1, 0, 1}}), Contains("stored runs do not cover its dims"));
}

TEST_CASE("initial weights: the host's Threefry gives the graph's random bits, bit for bit") {
    graph g("bits");
    g.bind(rows(3), cols(5));
    const std::uint64_t seed = 0x0123456789abcdefull;
    random_key key(g, seed);
    g.outputs(random_bits(key, u32[rows, cols], random_offset(7ull << 32 | 11)));
    const auto out = cpu::executor(g, {.threads = 1})(std::span<const cpu::array>{});
    for (std::uint32_t p = 0; p < 15; ++p) {
        const auto want = train::threefry_2x32(static_cast<std::uint32_t>(seed >> 32), static_cast<std::uint32_t>(seed), 7, 11 + p);
        CHECK(out[0].values<std::uint32_t>()[p] == (want[0] ^ want[1]));
    }
}

TEST_CASE("initial weights: drawn as Hugging Face's _init_weights, seeded, the same on any number of threads") {
    const auto c = models::gpt2::config::load(data / "gpt2-tiny-a" / "config.json");
    const auto specs = models::gpt2_family::weights(c);
    const auto a = train::initial_weights(specs, c.initializer_range, 42, 1);
    const auto b = train::initial_weights(specs, c.initializer_range, 42, 3);
    const auto other = train::initial_weights(specs, c.initializer_range, 43, 2);
    REQUIRE(a.size() == specs.size());
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const auto& s = specs[i];
        INFO(s.name);
        const auto v = a[i].second.values<float>();
        CHECK(a[i].first == s.name);
        CHECK(a[i].second.dims() == s.dims);
        CHECK(std::equal(v.begin(), v.end(), b[i].second.values<float>().begin()));
        if (s.name.ends_with(".bias")) {
            CHECK(std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; }));
        } else if (s.name.find("ln_") != std::string::npos) {
            CHECK(std::all_of(v.begin(), v.end(), [](float x) { return x == 1.0f; }));
        } else {
            const bool residual = s.name.ends_with("c_proj.weight");
            const double want = c.initializer_range * (residual ? 1.0 / std::sqrt(2.0 * static_cast<double>(c.n_layer)) : 1.0);
            CHECK(std::abs(mean_of(v)) < 4 * want / std::sqrt(static_cast<double>(v.size())) + 1e-6);
            CHECK(std_of(v) == Approx(want).epsilon(0.1));
            CHECK(!std::equal(v.begin(), v.end(), other[i].second.values<float>().begin()));
        }
    }
    // OPT's embedding has a padding row (pad_token_id 1), left zero.
    const auto o = models::opt::config::load(data / "opt-tiny" / "config.json");
    const auto ow = train::initial_weights(models::opt_family::weights(o), o.initializer_range, 7);
    const auto& table = ow.front().second;
    REQUIRE(ow.front().first == "decoder.embed_tokens.weight");
    const auto width = static_cast<std::size_t>(table.dims()[1].extent);
    const auto rows_of = table.values<float>();
    CHECK(std::all_of(rows_of.begin() + static_cast<std::ptrdiff_t>(width), rows_of.begin() + static_cast<std::ptrdiff_t>(2 * width),
                      [](float x) { return x == 0.0f; }));
    CHECK(std::any_of(rows_of.begin(), rows_of.begin() + static_cast<std::ptrdiff_t>(width), [](float x) { return x != 0.0f; }));
    CHECK_THROWS_WITH(train::initial_weights(models::opt_family::weights(o), 0.0, 7), Contains("must be positive"));
}

TEST_CASE("save_pretrained: a Hugging Face folder that reads back bit for bit and generates as the original") {
    for (const auto& model : {"gpt2-tiny-a", "llama-tiny-gqa", "gptj-tiny", "opt-tiny"}) {
        INFO(model);
        models::with_family(data / model, [&]<class Family>() {
            const auto dir = data / model;
            const auto c = Family::config::load(dir / "config.json");
            const runtime::weight_files<Family> files(dir, c, 1, {0});
            const auto weights = files.arrays(0, dtype::f32);
            const auto out = scratch(model);
            const auto config = nlohmann::json::parse(read_file(dir / "config.json"));
            runtime::save_pretrained<Family>(out, config, c, weights, dtype::f32, dir);

            // The names a *ForCausalLM has, the metadata transformers asks for, the config and the tokenizer.
            const io::safetensors written(out / "model.safetensors");
            CHECK(written.metadata().at("format") == "pt");
            for (const auto& e : written.tensors())
                CHECK((e.name.starts_with(Family::prefix) || e.name.starts_with("lm_head.")));
            CHECK(nlohmann::json::parse(read_file(out / "config.json"))["dtype"] == "float32");
            CHECK(read_file(out / "tokenizer.json") == read_file(dir / "tokenizer.json"));
            for (const auto& f : fs::directory_iterator(out)) CHECK(f.path().string().find(".tmp-") == std::string::npos);

            const runtime::weight_files<Family> back(out, c, 1, {0});
            const auto again = back.arrays(0, dtype::f32);
            REQUIRE(again.size() == weights.size());
            for (std::size_t i = 0; i < weights.size(); ++i) {
                CHECK(again[i].first == weights[i].first);
                CHECK(std::memcmp(again[i].second.data(), weights[i].second.data(), weights[i].second.bytes()) == 0);
            }
            runtime::decoder<Family> lm(out, {.threads = 1});
            for (const auto& p : scribe_test::golden(model))
                CHECK(lm.generate({p.ids}, {.max_new_tokens = static_cast<std::int64_t>(p.greedy.size()), .stop_at_eos = false}).tokens[0] ==
                      p.greedy);

            // In bf16: each weight rounded to bf16, the config saying so.
            runtime::save_pretrained<Family>(out, config, c, weights, dtype::bf16, dir);
            CHECK(nlohmann::json::parse(read_file(out / "config.json"))["dtype"] == "bfloat16");
            const runtime::weight_files<Family> half(out, c, 1, {0});
            CHECK(half.stored_type(0, 0) == dtype::bf16);
            const auto rounded = half.array(0, 0, dtype::f32);
            const auto h = rounded.template values<float>();
            const auto w = weights[0].second.template values<float>();
            for (std::size_t k = 0; k < w.size(); ++k) CHECK(h[k] == bf16_bits_to_f32(f32_to_bf16_bits(w[k])));
            fs::remove_all(out);
        });
    }
    const auto c = models::gpt2::config::load(data / "gpt2-tiny-a" / "config.json");
    auto weights = train::initial_weights(models::gpt2_family::weights(c), 0.02, 1);
    weights.pop_back();
    CHECK_THROWS_WITH(runtime::save_pretrained<models::gpt2_family>(scratch("missing"), nlohmann::json::object(), c, weights, dtype::f32),
                      Contains("weight ln_f.bias is missing"));
}

TEST_CASE("atomic_file: the target holds the old bytes or the new, never a part") {
    const auto dir = scratch("atomic");
    const auto target = dir / "model.safetensors";
    io::write_text(target, "old");
    {
        io::atomic_file f(target);
        f.write("new, but not committed");
        CHECK(read_file(target) == "old");
    }  // abandoned: as a run killed before commit
    CHECK(read_file(target) == "old");
    CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}) == 1);
    {
        io::atomic_file f(target);
        f.write("new");
        f.commit();
    }
    CHECK(read_file(target) == "new");
    CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}) == 1);
    CHECK_THROWS_WITH(io::write_text(dir / "no-such-folder" / "x", "y"), Contains("cannot write"));
    fs::remove_all(dir);
}

TEST_CASE("dropout: drops exactly the elements whose counter-based bits fall below p * 2^32, and scales the rest") {
    graph g("dropout");
    g.bind(rows(64), cols(1000));
    auto x = g.parameter(f32[rows, cols], "x");
    random_key key(g.parameter(u32[], "k0"), g.parameter(u32[], "k1"));
    const double p = 0.25;
    auto y = nn::dropout(x, p, key, 1000);
    auto none = nn::dropout(x, 0.0, key, 0);
    auto all = nn::dropout(x, 1.0, key, 0);
    CHECK(none.id() == x.id());
    g.outputs(y, all);
    std::vector<float> ones(64 * 1000, 1.0f);
    const std::uint32_t k0 = 3, k1 = 99;
    const auto out = cpu::executor(g, {.threads = 2})({{"x", cpu::array::borrow(dtype::f32, {{"rows", 64}, {"cols", 1000}}, ones.data(), ones.size() * 4)},
                                                    {"k0", cpu::array::borrow(dtype::u32, {}, &k0, 4)},
                                                    {"k1", cpu::array::borrow(dtype::u32, {}, &k1, 4)}});
    const auto v = out[0].values<float>();
    std::size_t dropped = 0;
    for (std::uint32_t e = 0; e < v.size(); ++e) {
        const auto w = train::threefry_2x32(k0, k1, 0, 1000 + e);
        const bool keep = (w[0] ^ w[1]) >= 1073741824u;  // 0.25 * 2^32
        if (keep != (v[e] != 0.0f)) FAIL("element " << e << " kept " << (v[e] != 0.0f) << ", the bits say " << keep);
        if (keep && v[e] != static_cast<float>(1.0 / (1.0 - p))) FAIL("element " << e << " scaled to " << v[e]);
        dropped += !keep;
    }
    CHECK(static_cast<double>(dropped) / static_cast<double>(v.size()) == Approx(p).margin(0.01));
    const auto z = out[1].values<float>();
    CHECK(std::all_of(z.begin(), z.end(), [](float a) { return a == 0.0f; }));
    CHECK_THROWS_WITH(nn::dropout(x, 1.5, key, 0), Contains("must be in [0, 1]"));
}

TEST_CASE("dropout: a training step with the config's dropout is seeded by its key, and off gives the exact loss") {
    const auto dir = data / "gpt2-tiny-a";
    auto c = models::gpt2::config::load(dir / "config.json");
    c.dropout = {.embedding = 0.1, .attention = 0.1, .residual = 0.1};
    const runtime::weight_files<models::gpt2_family> files(dir, c, 1, {0});
    std::vector<std::int32_t> ids = {5, 9, 13, 2, 7, 11, 3, 1}, lengths = {8};
    auto loss_with = [&](bool dropout, std::uint32_t k1) {
        graph g("loss");
        const auto loss = train::causal_lm_loss<models::gpt2_family, f32>(g, c, {.batch = 1, .seq = 8, .dropout = dropout});
        auto [value, grads] = value_and_grad(loss, tensor_of<f32[nn::vocab, nn::hidden]>(g, *g.find_parameter("wte.weight")));
        g.outputs(value, grads);
        auto in = files.arrays(0, dtype::f32);
        in.emplace_back("ids", cpu::array::borrow(dtype::s32, {{"batch", 1}, {"seq", 8}}, ids.data(), 32));
        in.emplace_back("lengths", cpu::array::borrow(dtype::s32, {{"batch", 1}}, lengths.data(), 4));
        const std::uint32_t k0 = 1;
        if (dropout) {
            in.emplace_back("dropout.key0", cpu::array::borrow(dtype::u32, {}, &k0, 4));
            in.emplace_back("dropout.key1", cpu::array::borrow(dtype::u32, {}, &k1, 4));
        }
        const auto out = cpu::executor(g, {.threads = 1}).run_donating(std::move(in));
        const auto grad = out[1].values<float>();
        CHECK(std::all_of(grad.begin(), grad.end(), [](float a) { return std::isfinite(a); }));
        return out[0].values<float>()[0];
    };
    const auto off = loss_with(false, 0);
    CHECK(loss_with(true, 2) == loss_with(true, 2));
    CHECK(loss_with(true, 2) != loss_with(true, 3));
    CHECK(loss_with(true, 2) != off);
    // The golden loss of this batch is Hugging Face's in eval mode: dropout off is exact.
    c.dropout = {};
    CHECK(loss_with(true, 2) == off);
}

}  // namespace test_weights
