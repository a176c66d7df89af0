// Data-parallel training: N ranks (threads of one process, each with its
// communicator), each training on its slice of every global batch, against one
// process training on the whole batch. The single-process steps are the ones
// test_train.cpp checks against torch.optim. Every row is full (packed blocks,
// as `scribe train` makes them), so the mean of the ranks' losses is the loss of
// the global batch and the averaged gradient is its gradient.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <scribe/cpu.hpp>
#include <scribe/models/registry.hpp>
#include <scribe/runtime/trainer.hpp>
#include <scribe/runtime/weight_files.hpp>
#include <scribe/train/causal_lm.hpp>

#include "golden.hpp"

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_data_parallel {

using namespace scribe;
using scribe_test::data;

namespace {

constexpr std::int64_t rows = 4, seq = 12, steps = 10;

// The global micro-batches of every step: random tokens, every row full.
std::vector<std::vector<std::int32_t>> global_batches(std::int64_t vocab, std::int64_t accumulate) {
    std::mt19937 rng(1234);
    std::uniform_int_distribution<std::int32_t> token(0, static_cast<std::int32_t>(vocab - 1));
    std::vector<std::vector<std::int32_t>> b(static_cast<std::size_t>(steps * accumulate));
    for (auto& ids : b) {
        ids.resize(static_cast<std::size_t>(rows * seq));
        for (auto& t : ids) t = token(rng);
    }
    return b;
}

struct run_result {
    std::vector<runtime::trainer::result> steps;
    cpu::named_arrays weights, state;
};

train::update_options options(std::int64_t accumulate, std::int64_t replicas, std::int64_t bucket_bytes) {
    train::update_options u;
    u.method = train::adamw{.weight_decay = 0.1};
    u.lr = {.kind = train::schedule::decay::cosine, .lr = 3e-3, .warmup = 2, .total = steps};
    u.clip = 1.0;
    u.accumulate = accumulate;
    u.dp = {.replicas = replicas, .bucket_bytes = bucket_bytes};
    return u;
}

// Rank `rank` of `ranks` (its rows of every global batch) for `steps` steps.
template <class Family>
run_result train_rank(const typename Family::config& c, cpu::named_arrays weights, const std::vector<std::vector<std::int32_t>>& batches,
                      std::int64_t accumulate, int rank, int ranks, cpu::communicator* comm, std::int64_t bucket_bytes,
                      const std::function<void(train::update_options&)>& tweak = {}) {
    const auto mine = rows / ranks;
    const bool narrow = weights.front().second.type() == dtype::bf16;  // a bf16 model
    auto update = options(accumulate, ranks, bucket_bytes);
    if (tweak) tweak(update);
    runtime::trainer t(
        [&](graph& g) {
            return narrow ? train::causal_lm_loss<Family, bf16>(g, c, {.batch = mine, .seq = seq}).id()
                          : train::causal_lm_loss<Family, f32>(g, c, {.batch = mine, .seq = seq}).id();
        },
        std::move(weights), {.update = update, .threads = 1, .comm = comm});
    const std::vector<std::int32_t> lengths(static_cast<std::size_t>(mine), static_cast<std::int32_t>(seq));
    run_result r;
    for (std::int64_t s = 0; s < steps; ++s) {
        std::vector<runtime::trainer::batch> micro;
        for (std::int64_t j = 0; j < accumulate; ++j) {
            const auto& ids = batches[static_cast<std::size_t>(s * accumulate + j)];
            const auto* slice = ids.data() + rank * mine * seq;
            micro.push_back({{"ids", cpu::array::borrow(dtype::s32, {{"batch", mine}, {"seq", seq}}, slice,
                                                        static_cast<std::size_t>(mine * seq) * 4)},
                             {"lengths", cpu::array::borrow(dtype::s32, {{"batch", mine}}, lengths.data(), lengths.size() * 4)}});
        }
        r.steps.push_back(t.step(micro));
    }
    for (const auto& [name, w] : t.weights()) r.weights.emplace_back(name, w);
    for (const auto& [name, a] : t.state()) r.state.emplace_back(name, a);
    return r;
}

// Every rank of a thread group, each on a thread; the first failure rethrown.
template <class Body>
std::vector<run_result> on_ranks(int ranks, Body body) {
    cpu::thread_group group(ranks);
    std::vector<run_result> out(static_cast<std::size_t>(ranks));
    std::vector<std::exception_ptr> failed(static_cast<std::size_t>(ranks));
    std::vector<std::thread> threads;
    for (int r = 0; r < ranks; ++r)
        threads.emplace_back([&, r] {
            try {
                out[static_cast<std::size_t>(r)] = body(r, group[r]);
            } catch (...) {
                failed[static_cast<std::size_t>(r)] = std::current_exception();
                group[r].abort();
            }
        });
    for (auto& t : threads) t.join();
    for (auto& e : failed)
        if (e) std::rethrow_exception(e);
    return out;
}

// The elements [begin, end) of a weight that are an attention key projection's
// bias: their gradient is zero in exact arithmetic, so Adam turns rounding noise
// into steps of up to the learning rate in any direction (test_train.cpp says
// more); there the runs are held only to Adam's largest steps.
std::pair<std::size_t, std::size_t> key_bias(const std::string& name, std::size_t n) {
    if (name.ends_with("attn.c_attn.bias")) return {n / 3, 2 * n / 3};  // GPT-2's [q | k | v]
    if (name.ends_with("k_proj.bias")) return {0, n};
    return {0, 0};
}

bool same_bytes(const cpu::array& a, const cpu::array& b) {
    return a.bytes() == b.bytes() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

template <class Family>
void check_data_parallel(const std::string& model) {
    const auto dir = data / model;
    const auto c = models::load_config<typename Family::config>(dir / "config.json");
    const runtime::weight_files<Family> files(dir, c, 1, {0});
    for (const std::int64_t accumulate : {1, 2}) {
        const auto batches = global_batches(c.vocab_size, accumulate);
        const auto one = train_rank<Family>(c, files.arrays(0, dtype::f32), batches, accumulate, 0, 1, nullptr, 0x7fffffff);
        // Buckets of 1 KiB hold one or a few small gradients; 64 MiB holds them all.
        for (const int ranks : {2, 4})
            for (const std::int64_t bucket : {std::int64_t{1} << 10, std::int64_t{64} << 20}) {
                INFO(model << ": DP " << ranks << ", accumulate " << accumulate << ", buckets of " << bucket << " bytes");
                const auto runs = on_ranks(ranks, [&](int r, cpu::communicator& comm) {
                    return train_rank<Family>(c, files.arrays(0, dtype::f32), batches, accumulate, r, ranks, &comm, bucket);
                });
                for (std::int64_t s = 0; s < steps; ++s) {
                    INFO("step " << s + 1);
                    const auto& want = one.steps[static_cast<std::size_t>(s)];
                    for (const auto& run : runs) {
                        const auto& got = run.steps[static_cast<std::size_t>(s)];
                        CHECK(got.step == want.step);
                        CHECK(got.lr == want.lr);
                        CHECK(got.loss == Approx(want.loss).epsilon(2e-5));
                        CHECK(got.grad_norm == Approx(want.grad_norm).epsilon(1e-4));
                    }
                }
                double furthest = 0;  // Adam moves an element by at most lr (1 - beta1) / sqrt(1 - beta2) a step
                for (const auto& st : one.steps) furthest += st.lr * 0.1 / std::sqrt(0.001);
                for (std::size_t i = 0; i < one.weights.size(); ++i) {
                    INFO("weight " << one.weights[i].first);
                    const auto e = one.weights[i].second.template values<float>();
                    double scale = 0, diff = 0;
                    for (auto v : e) scale = std::max(scale, std::abs(static_cast<double>(v)));
                    const auto a = runs[0].weights[i].second.template values<float>();
                    REQUIRE(a.size() == e.size());
                    const auto [kb, ke] = key_bias(one.weights[i].first, a.size());
                    for (std::size_t k = 0; k < a.size(); ++k) {
                        const auto d = std::abs(static_cast<double>(a[k]) - e[k]);
                        if (k >= kb && k < ke) CHECK(d <= 2 * furthest);
                        else diff = std::max(diff, d);
                    }
                    CHECK(diff <= 2e-5 * scale + 1e-7);
                    for (int r = 1; r < ranks; ++r)  // the ranks take the same steps: identical weights
                        CHECK(same_bytes(runs[static_cast<std::size_t>(r)].weights[i].second, runs[0].weights[i].second));
                }
            }
    }
}

}  // namespace

TEST_CASE("data parallel: DP 2 and 4 as threads train GPT-2 as one process does on the global batch") {
    check_data_parallel<models::gpt2_family>("gpt2-tiny-a");
}

TEST_CASE("data parallel: DP 2 and 4 as threads train LLaMA (GQA) as one process does on the global batch") {
    check_data_parallel<models::llama_family>("llama-tiny-gqa");
}

TEST_CASE("data parallel: every rank starts from rank 0's weights") {
    const auto dir = data / "gpt2-tiny-a";
    const auto c = models::load_config<models::gpt2_family::config>(dir / "config.json");
    const runtime::weight_files<models::gpt2_family> files(dir, c, 1, {0});
    const auto loaded = files.arrays(0, dtype::f32);
    std::vector<cpu::named_arrays> seen(3);
    cpu::thread_group group(3);
    std::vector<std::thread> threads;
    for (int r = 0; r < 3; ++r)
        threads.emplace_back([&, r] {
            cpu::named_arrays w;
            for (const auto& [name, a] : loaded) {  // rank r's own weights: rank 0's times r + 1
                cpu::array own(a.type(), a.dims());
                const auto from = a.template values<float>();
                auto* to = reinterpret_cast<float*>(own.mutable_data());
                for (std::size_t k = 0; k < from.size(); ++k) to[k] = from[k] * static_cast<float>(r + 1);
                w.emplace_back(name, r == 0 ? a : std::move(own));  // rank 0's borrowed from the file
            }
            runtime::trainer t([&](graph& g) { return train::causal_lm_loss<models::gpt2_family, f32>(g, c, {.batch = 1, .seq = 4}).id(); },
                               std::move(w), {.update = options(1, 3, 1 << 20), .threads = 1, .comm = &group[r]});
            for (const auto& [name, a] : t.weights()) seen[static_cast<std::size_t>(r)].emplace_back(name, a);
        });
    for (auto& t : threads) t.join();
    for (int r = 0; r < 3; ++r) {
        REQUIRE(seen[static_cast<std::size_t>(r)].size() == loaded.size());
        for (std::size_t i = 0; i < loaded.size(); ++i) {
            INFO("rank " << r << ", weight " << loaded[i].first);
            CHECK(same_bytes(seen[static_cast<std::size_t>(r)][i].second, loaded[i].second));
        }
    }
}

TEST_CASE("data parallel: a step's replica count must be the run's rank count") {
    const auto dir = data / "gpt2-tiny-a";
    const auto c = models::load_config<models::gpt2_family::config>(dir / "config.json");
    const runtime::weight_files<models::gpt2_family> files(dir, c, 1, {0});
    cpu::thread_group group(2);
    auto loss = [&](graph& g) { return train::causal_lm_loss<models::gpt2_family, f32>(g, c, {.batch = 1, .seq = 4}).id(); };
    CHECK_THROWS_WITH(runtime::trainer(loss, files.arrays(0, dtype::f32), {.update = options(1, 4, 1 << 20), .threads = 1, .comm = &group[0]}),
                      Catch::Contains("4 data-parallel replicas") && Catch::Contains("2 ranks"));
    CHECK_THROWS_WITH(runtime::trainer(loss, files.arrays(0, dtype::f32), {.update = options(1, 2, 1 << 20), .threads = 1}),
                      Catch::Contains("2 data-parallel replicas") && Catch::Contains("1 rank"));
    CHECK_THROWS_WITH(train::detail::check(options(1, 2, 0)), Catch::Contains("bucket of 0 bytes"));
}

TEST_CASE("data parallel: a rank that fails mid-run stops the others' steps instead of leaving them waiting") {
    const auto dir = data / "gpt2-tiny-a";
    const auto c = models::load_config<models::gpt2_family::config>(dir / "config.json");
    const runtime::weight_files<models::gpt2_family> files(dir, c, 1, {0});
    const auto batches = global_batches(c.vocab_size, 1);
    cpu::thread_group group(2);
    std::vector<std::string> said(2);
    std::vector<std::int64_t> steps_taken(2, 0);
    std::vector<std::thread> threads;
    for (int r = 0; r < 2; ++r)
        threads.emplace_back([&, r] {
            try {
                runtime::trainer t([&](graph& g) { return train::causal_lm_loss<models::gpt2_family, f32>(g, c, {.batch = 2, .seq = seq}).id(); },
                                   files.arrays(0, dtype::f32), {.update = options(1, 2, 1 << 20), .threads = 1, .comm = &group[r]});
                const std::vector<std::int32_t> lengths(2, static_cast<std::int32_t>(seq));
                for (std::int64_t s = 0; s < steps; ++s) {
                    if (r == 1 && s == 3) throw error("rank 1's data is unreadable");  // as a rank that fails
                    const auto* ids = batches[static_cast<std::size_t>(s)].data() + r * 2 * seq;
                    (void)t.step({{"ids", cpu::array::borrow(dtype::s32, {{"batch", 2}, {"seq", seq}}, ids, 2 * seq * 4)},
                                  {"lengths", cpu::array::borrow(dtype::s32, {{"batch", 2}}, lengths.data(), 8)}});
                    ++steps_taken[static_cast<std::size_t>(r)];
                }
            } catch (const std::exception& e) {
                said[static_cast<std::size_t>(r)] = e.what();
                group[r].abort();
            }
        });
    for (auto& t : threads) t.join();
    CHECK(steps_taken[1] == 3);
    CHECK(steps_taken[0] == 3);  // its fourth step's all-reduce threw
    CHECK_THAT(said[1], Catch::Contains("rank 1's data is unreadable"));
    CHECK_THAT(said[0], Catch::Contains("another rank failed"));
}

TEST_CASE("data parallel: bf16 weights rounded stochastically or kept as f32 masters stay identical on every rank") {
    using Family = models::gpt2_family;
    const auto dir = data / "gpt2-tiny-a";
    const auto c = models::load_config<Family::config>(dir / "config.json");
    const runtime::weight_files<Family> files(dir, c, 1, {0});
    const auto batches = global_batches(c.vocab_size, 1);
    const std::pair<const char*, std::function<void(train::update_options&)>> modes[] = {
        {"stochastic rounding", [](train::update_options& u) {
             u.round = train::rounding::stochastic;
             u.seed = 11;
         }},
        {"f32 master weights", [](train::update_options& u) { u.master_weights = true; }}};
    for (const auto& [mode, tweak] : modes) {
        INFO(mode);
        const auto one = train_rank<Family>(c, files.arrays(0, dtype::bf16), batches, 1, 0, 1, nullptr, 0x7fffffff, tweak);
        const auto runs = on_ranks(2, [&](int r, cpu::communicator& comm) {
            return train_rank<Family>(c, files.arrays(0, dtype::bf16), batches, 1, r, 2, &comm, std::int64_t{4} << 10, tweak);
        });
        for (std::size_t i = 0; i < one.weights.size(); ++i) {
            INFO(one.weights[i].first);
            CHECK(runs[0].weights[i].second.type() == dtype::bf16);
            CHECK(same_bytes(runs[1].weights[i].second, runs[0].weights[i].second));  // every replica rounds alike
        }
        REQUIRE(runs[0].state.size() == runs[1].state.size());
        for (std::size_t i = 0; i < runs[0].state.size(); ++i) CHECK(same_bytes(runs[1].state[i].second, runs[0].state[i].second));
        // The gradients are the global batch's, summed in another order: the
        // losses follow one process's within bf16's resolution.
        for (std::int64_t s = 0; s < steps; ++s)
            CHECK(runs[0].steps[static_cast<std::size_t>(s)].loss == Approx(one.steps[static_cast<std::size_t>(s)].loss).epsilon(1e-2));
    }
}

}  // namespace test_data_parallel
