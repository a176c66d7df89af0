// Tensor parallelism below the models: the in-process communicator against the
// lockstep replicas (kernels::all_reduce, which XLA's conformance suite checks),
// its timeout when a rank never arrives, thread pools and groups that cannot
// start, an executor per rank against run_replicas, weight shards, the mesh's
// errors, and pre-sharded folders that are wrong.
#include <catch2/catch.hpp>

#include "threads.hpp"

#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <scribe/cpu.hpp>
#include <scribe/models/gpt2.hpp>
#include <scribe/parallel/weights.hpp>
#include <scribe/runtime/decoder.hpp>

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_parallel {

using namespace scribe;
namespace fs = std::filesystem;

namespace {
SCRIBE_DIM(rows);
SCRIBE_DIM(cols);

using scribe_test::on_threads;
}  // namespace

TEST_CASE("parallel: thread_group reduces, gathers and broadcasts like the lockstep replicas") {
    for (const int ranks : {1, 2, 3, 4}) {
        INFO(ranks << " ranks");
        cpu::thread_group group(ranks);
        std::mt19937 rng(7);
        std::normal_distribution<float> normal;
        constexpr std::int64_t n = 9001;  // not a multiple of any rank count; f32 sums in several blocks of 4096
        std::vector<std::vector<float>> data(static_cast<std::size_t>(ranks), std::vector<float>(n));
        for (auto& d : data)
            for (auto& v : d) v = normal(rng);
        // The reference: kernels::all_reduce over the ranks' values (bf16 too).
        graph g("ref");
        g.bind(rows(n));
        auto x = g.parameter(f32[rows], "x");
        auto xb = g.parameter(bf16[rows], "xb");
        g.outputs(all_reduce_sum(x, replica_groups::all(ranks)), all_reduce_max(xb, replica_groups::all(ranks)));
        std::vector<std::vector<cpu::array>> in;
        std::vector<cpu::array> narrow;
        for (auto& d : data) {
            auto a = cpu::array::borrow(dtype::f32, {{"rows", n}}, d.data(), d.size() * 4);
            auto b = cpu::array::uninitialized(dtype::bf16, {{"rows", n}});
            for (std::int64_t i = 0; i < n; ++i) store_as(dtype::bf16, d[static_cast<std::size_t>(i)], b.mutable_data() + 2 * i);
            narrow.push_back(b);
            in.push_back({a, b});
        }
        const auto ref = cpu::executor(g).run_replicas(in);

        std::vector<std::vector<float>> sums = data;
        std::vector<cpu::array> maxes;
        for (auto& b : narrow) maxes.push_back(cpu::array(b));  // owned copies, reduced in place
        std::vector<std::vector<std::int32_t>> gathered(static_cast<std::size_t>(ranks), std::vector<std::int32_t>(2 * ranks));
        std::vector<std::uint64_t> token(static_cast<std::size_t>(ranks), 0);
        on_threads(ranks, [&](int r) {
            auto& c = group[r];
            CHECK(c.rank() == r);
            CHECK(c.size() == ranks);
            const auto k = static_cast<std::size_t>(r);
            c.all_reduce(dtype::f32, reducer::sum, sums[k].data(), n);
            c.all_reduce(dtype::bf16, reducer::max, maxes[k].mutable_data(), n);
            const std::int32_t mine[2] = {r, 10 * r};
            c.all_gather(mine, gathered[k].data(), sizeof mine);
            if (r == ranks - 1) token[k] = 0xfeedULL;
            c.broadcast(&token[k], sizeof token[k], ranks - 1);
        });
        for (int r = 0; r < ranks; ++r) {
            const auto k = static_cast<std::size_t>(r);
            const auto want = ref[k][0].values<float>();
            CHECK(std::equal(want.begin(), want.end(), sums[k].begin()));  // bit for bit, same order
            CHECK(std::memcmp(maxes[k].data(), ref[k][1].data(), maxes[k].bytes()) == 0);
            for (int j = 0; j < ranks; ++j) {
                CHECK(gathered[k][static_cast<std::size_t>(2 * j)] == j);
                CHECK(gathered[k][static_cast<std::size_t>(2 * j + 1)] == 10 * j);
            }
            CHECK(token[k] == 0xfeedULL);
        }
    }
}

TEST_CASE("parallel: a rank that fails makes the others' exchanges throw, not hang") {
    cpu::thread_group group(2);
    float v = 1;
    CHECK_THROWS_WITH(on_threads(2, [&](int r) {
                          if (r == 1) {
                              group[1].abort();
                              throw error("rank 1 failed");
                          }
                          group[0].all_reduce(dtype::f32, reducer::sum, &v, 1);  // waits for rank 1, who never comes
                      }),
                      Catch::Contains("another rank failed"));
}

TEST_CASE("parallel: a rank that never arrives times out the others' exchange, which names it; later ones throw at once") {
    using namespace std::chrono;
    cpu::thread_group group(3);
    group.set_timeout(milliseconds(300));
    std::vector<std::string> said(2);
    std::vector<double> took(2);
    std::vector<std::thread> ts;
    for (int r = 0; r < 2; ++r)  // rank 2 never calls all_reduce
        ts.emplace_back([&, r] {
            float v = 1;
            const auto start = steady_clock::now();
            try {
                group[r].all_reduce(dtype::f32, reducer::sum, &v, 1);
            } catch (const error& e) {
                said[static_cast<std::size_t>(r)] = e.what();
            }
            took[static_cast<std::size_t>(r)] = duration<double>(steady_clock::now() - start).count();
        });
    for (auto& t : ts) t.join();
    for (std::size_t r = 0; r < 2; ++r) {
        INFO("rank " << r);
        CHECK_THAT(said[r], Catch::Contains("parallel ranks: rank 2 did not reach the all-reduce within 0.3 s (the collective timeout"));
        CHECK(took[r] >= 0.29);
        CHECK(took[r] < 1.5);
    }
    // The group is failed: every rank's next exchange, rank 2's too, throws without waiting.
    for (int r = 0; r < 3; ++r) {
        float v = 1;
        const auto start = steady_clock::now();
        CHECK_THROWS_WITH(group[r].broadcast(&v, sizeof v, 0), Catch::Contains("rank 2 did not reach the all-reduce"));
        CHECK(duration<double>(steady_clock::now() - start).count() < 0.1);
    }
}

TEST_CASE("parallel: with a timeout set, exchanges and ranks late by less than it give the same results") {
    using namespace std::chrono;
    constexpr int ranks = 3, rounds = 2000;
    cpu::thread_group group(ranks);
    group.set_timeout(milliseconds(2000));
    std::vector<std::vector<float>> got(ranks);
    on_threads(ranks, [&](int r) {
        auto& c = group[r];
        for (int k = 0; k < rounds; ++k) {
            if (k == 7 && r == 1) std::this_thread::sleep_for(milliseconds(200));  // late, within the timeout
            float v[3] = {static_cast<float>(r), static_cast<float>(k), 1};
            c.all_reduce(dtype::f32, reducer::sum, v, 3);
            got[static_cast<std::size_t>(r)].insert(got[static_cast<std::size_t>(r)].end(), v, v + 3);
        }
    });
    for (int r = 0; r < ranks; ++r) {
        const auto& g = got[static_cast<std::size_t>(r)];
        REQUIRE(g.size() == 3 * rounds);
        for (int k = 0; k < rounds; ++k) {
            const auto i = static_cast<std::size_t>(3 * k);
            CHECK((g[i] == 0 + 1 + 2 && g[i + 1] == static_cast<float>(ranks * k) && g[i + 2] == ranks));
        }
    }
}

TEST_CASE("parallel: thread groups and pools of absurd sizes are refused by number") {
    CHECK_THROWS_WITH(cpu::thread_group(0), Catch::Contains("thread_group: needs between 1 and 1024 ranks, got 0"));
    CHECK_THROWS_WITH(cpu::thread_group(1025), Catch::Contains("thread_group: needs between 1 and 1024 ranks, got 1025"));
    CHECK_THROWS_WITH(cpu::thread_pool(5000), Catch::Contains("thread_pool: 5000 threads asked for; a pool runs at most 1024"));
    CHECK_THROWS_WITH(cpu::thread_pool(static_cast<unsigned>(-1)), Catch::Contains("threads asked for; a pool runs at most 1024"));
}

TEST_CASE("parallel: a thread pool that cannot start a thread stops those it started and says which") {
    // In a child process whose thread limit (RLIMIT_NPROC) lets it start one
    // thread (as root the limit binds only for another user: one with no other
    // processes) or none. The child reports what the pool said through a pipe;
    // a pool that left a started thread running would end it in std::terminate,
    // and one that waited for it forever is ended by the alarm.
    int out[2];
    REQUIRE(::pipe(out) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(out[0]);
        ::alarm(20);
        std::string said = "skip";
        const bool root = ::geteuid() == 0;
        const rlimit limit{root ? 2u : 0u, root ? 2u : 0u};
        if (::setrlimit(RLIMIT_NPROC, &limit) == 0 && (!root || ::setuid(54321) == 0)) {
            try {
                cpu::thread_pool pool(4);
                said = "started";
            } catch (const error& e) {
                said = e.what();
            }
        }
        const auto n = ::write(out[1], said.data(), said.size());
        ::_exit(n == static_cast<ssize_t>(said.size()) ? 0 : 1);
    }
    ::close(out[1]);
    std::string said;
    char buf[512];
    for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) said.append(buf, static_cast<std::size_t>(n));
    ::close(out[0]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    if (said == "skip") {
        WARN("cannot lower this process's thread limit here; only the size bound is checked");
        return;
    }
    CHECK_THAT(said, Catch::Contains("thread_pool: cannot start thread ") && Catch::Contains(" of 4: ") && Catch::Contains("(ask for fewer threads)"));
    if (::geteuid() == 0) CHECK_THAT(said, Catch::Contains("cannot start thread 2 of 4"));  // thread 1 started, then was stopped
}

TEST_CASE("parallel: one executor per rank with a communicator equals run_replicas") {
    graph g("tp");
    g.bind(rows(3), cols(5));
    auto x = g.parameter(f32[rows, cols], "x");
    auto rank = convert<f32>(replica_id(g));
    auto y = all_reduce_sum(x * broadcast_to(rank + 1.0, x), replica_groups::all(2));
    g.outputs(y, all_gather<cols>(y + broadcast_to(rank, y), replica_groups::all(2)), replica_id(g));
    std::vector<std::vector<float>> data = {std::vector<float>(15), std::vector<float>(15)};
    for (std::size_t i = 0; i < 15; ++i) data[0][i] = static_cast<float>(i), data[1][i] = 0.5f * static_cast<float>(i * i);
    std::vector<std::vector<cpu::array>> in;
    for (auto& d : data) in.push_back({cpu::array::borrow(dtype::f32, {{"rows", 3}, {"cols", 5}}, d.data(), 60)});
    const auto ref = cpu::executor(g).run_replicas(in);
    cpu::thread_group group(2);
    std::vector<std::vector<cpu::array>> got(2);
    on_threads(2, [&](int r) {
        cpu::executor e(g, {.threads = 1, .comm = &group[r]});
        got[static_cast<std::size_t>(r)] = e(in[static_cast<std::size_t>(r)]);
    });
    for (std::size_t r = 0; r < 2; ++r)
        for (std::size_t k = 0; k < 3; ++k) {
            INFO("rank " << r << " output " << k);
            REQUIRE(got[r][k].dims() == ref[r][k].dims());
            CHECK(std::memcmp(got[r][k].data(), ref[r][k].data(), got[r][k].bytes()) == 0);
        }
    CHECK(got[1][2].values<std::uint32_t>()[0] == 1);
    // y's last column: rank 0's x + 2 * rank 1's x.
    CHECK(got[0][0].values<float>()[4] == 4.0f + 2 * 8.0f);
    // Groups that do not cut the communicator's ranks into parts are refused by name.
    graph h("pairs");
    h.bind(rows(2));
    auto z = h.parameter(f32[rows], "z");
    h.outputs(all_reduce_sum(z, replica_groups{{{0, 1}}}));
    cpu::thread_group three(3);
    CHECK_THROWS_WITH(on_threads(3, [&](int r) { cpu::executor e(h, {.threads = 1, .comm = &three[r]}); }),
                      Catch::Contains("all_reduce with replica groups {0,1} on a run of 3 ranks") && Catch::Contains("leave out rank 2"));
}

// A 2 x 2 mesh of 4 ranks: groups {0,1}{2,3} (tensor parallel) and {0,2}{1,3}
// (data parallel) through the communicator's parts, against run_replicas.
TEST_CASE("parallel: collectives within groups go through the communicator's parts, equal to run_replicas") {
    graph g("mesh");
    g.bind(rows(5));
    auto x = g.parameter(f32[rows], "x");
    auto inner = all_reduce_sum(x, replica_groups{{{0, 1}, {2, 3}}});
    auto outer = all_reduce_sum(inner * x, replica_groups{{{0, 2}, {1, 3}}});
    auto joined = all_gather<rows>(outer, replica_groups{{{2, 3}, {0, 1}}});
    auto reversed = all_reduce_max(x, replica_groups{{{3, 2, 1, 0}}});
    g.outputs(inner, outer, joined, reversed);
    std::vector<std::vector<float>> data(4, std::vector<float>(5));
    for (std::size_t r = 0; r < 4; ++r)
        for (std::size_t i = 0; i < 5; ++i) data[r][i] = static_cast<float>(r * 10 + i) * 0.25f - 3;
    std::vector<std::vector<cpu::array>> in;
    for (auto& d : data) in.push_back({cpu::array::borrow(dtype::f32, {{"rows", 5}}, d.data(), 20)});
    const auto ref = cpu::executor(g).run_replicas(in);
    cpu::thread_group group(4);
    std::vector<std::vector<cpu::array>> got(4);
    on_threads(4, [&](int r) {
        cpu::executor e(g, {.threads = 1, .comm = &group[r]});
        for (int k = 0; k < 3; ++k) got[static_cast<std::size_t>(r)] = e(in[static_cast<std::size_t>(r)]);  // the parts reused
    });
    for (std::size_t r = 0; r < 4; ++r)
        for (std::size_t k = 0; k < 4; ++k) {
            INFO("rank " << r << " output " << k);
            REQUIRE(got[r][k].dims() == ref[r][k].dims());
            CHECK(std::memcmp(got[r][k].data(), ref[r][k].data(), got[r][k].bytes()) == 0);
        }
    // Rank 3's inner sum is ranks 2 and 3's x: (20 + 30) / 4 - 6 at element 0.
    CHECK(got[3][0].values<float>()[0] == 6.5f);
    CHECK(got[0][2].dims() == shape{{"rows", 10}});

    // A part's ranks are numbered in the group's order; a rank that fails stops
    // the exchanges of every part, and a part's timeout names the whole group's ranks.
    cpu::thread_group four(4);
    std::vector<int> part_rank(4);
    CHECK_THROWS_WITH(on_threads(4,
                                 [&](int r) {
                                     auto part = four[r].split({{3, 1}, {2, 0}});
                                     part_rank[static_cast<std::size_t>(r)] = part->rank();
                                     CHECK(part->size() == 2);
                                     if (r == 0) {
                                         four[0].abort();
                                         throw error("rank 0 failed");
                                     }
                                     float v = 1;
                                     part->all_reduce(dtype::f32, reducer::sum, &v, 1);  // ranks 1, 3 meet; rank 2 waits for 0
                                     part->all_reduce(dtype::f32, reducer::sum, &v, 1);
                                     four[r].all_reduce(dtype::f32, reducer::sum, &v, 1);
                                 }),
                      Catch::Contains("rank 0 failed"));
    CHECK(part_rank == std::vector<int>{1, 1, 0, 0});
    cpu::thread_group late(4);
    late.set_timeout(std::chrono::milliseconds(2000));
    std::vector<std::string> said(4);
    on_threads(4, [&](int r) {
        auto part = late[r].split({{0, 1}, {2, 3}});
        part->set_timeout(std::chrono::milliseconds(100));  // the part's, before the whole group's
        float v = 1;
        try {
            if (r != 3) part->all_reduce(dtype::f32, reducer::sum, &v, 1);  // rank 3 never arrives
            late[r].all_reduce(dtype::f32, reducer::sum, &v, 1);
        } catch (const error& e) {
            said[static_cast<std::size_t>(r)] = e.what();
        }
    });
    CHECK_THAT(said[2], Catch::Contains("rank 3 did not reach the all-reduce"));
    for (int r : {0, 1, 3}) CHECK_THAT(said[static_cast<std::size_t>(r)], Catch::Contains("rank 3 did not reach the all-reduce"));
    CHECK_THROWS_WITH(late[0].split({{0, 1}, {2}}), Catch::Contains("leave out rank 3"));
    CHECK_THROWS_WITH(late[0].split({{0, 1}, {2, 3, 4}}), Catch::Contains("rank 4 does not exist"));
}

TEST_CASE("parallel: weight shards are borrowed where contiguous, copied and zero-padded otherwise") {
    std::vector<float> w(5 * 3);  // [rows 5, cols 3]
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i + 1);
    const auto full = cpu::array::borrow(dtype::f32, {{"rows", 5}, {"cols", 3}}, w.data(), w.size() * 4);
    // Along rows (outermost): rank 0 holds rows 0-2 in place; rank 1 rows 3-4 and a zero row.
    const auto r0 = parallel::shard(full, "rows", 2, 0);
    CHECK(r0.borrowed());
    CHECK(r0.data() == full.data());
    CHECK(r0.dims() == shape{{"rows", 3}, {"cols", 3}});
    const auto r1 = parallel::shard(full, "rows", 2, 1);
    CHECK_FALSE(r1.borrowed());
    const auto v1 = r1.values<float>();
    CHECK(std::vector<float>(v1.begin(), v1.end()) == std::vector<float>{10, 11, 12, 13, 14, 15, 0, 0, 0});
    // Along cols (inner): each rank copies its columns only.
    const auto c2 = parallel::shard(full, "cols", 3, 2);
    CHECK(c2.dims() == shape{{"rows", 5}, {"cols", 1}});
    const auto v2 = c2.values<float>();
    CHECK(std::vector<float>(v2.begin(), v2.end()) == std::vector<float>{3, 6, 9, 12, 15});
    CHECK(parallel::shard(full, "", 4, 3).data() == full.data());  // replicated
    CHECK_THROWS_WITH(parallel::shard(full, "heads", 2, 0), Catch::Contains("split along `heads` but has no such dimension"));
}

TEST_CASE("parallel: mesh errors name the dimension, both sizes and the degrees that work") {
    const parallel::mesh m{.degree = 5};
    CHECK(m.shard("n_head", 20) == 4);
    CHECK_THROWS_WITH(m.shard("n_head", 12),
                      Catch::Contains("tp degree 5 does not divide n_head (12); degrees that do: 1, 2, 3, 4, 6, 12"));
    CHECK(m.padded(301) == 305);
    CHECK(m.groups().groups == std::vector<std::vector<std::int64_t>>{{0, 1, 2, 3, 4}});
    CHECK_THROWS_WITH((parallel::mesh{.degree = 0}.shard("x", 4)), Catch::Contains("at least 1"));
    // A 3 x 2 data x tensor-parallel mesh: copies {0,1}{2,3}{4,5}, shards {0,2,4}{1,3,5},
    // and each replica's rank within its copy (run on 6 lockstep replicas).
    const parallel::mesh dxt{.degree = 2, .replicas = 3};
    CHECK(dxt.groups().groups == std::vector<std::vector<std::int64_t>>{{0, 1}, {2, 3}, {4, 5}});
    CHECK(dxt.across().groups == std::vector<std::vector<std::int64_t>>{{0, 2, 4}, {1, 3, 5}});
    graph g("rank");
    g.outputs(dxt.rank(g), parallel::mesh{.degree = 2}.rank(g));
    const auto outs = cpu::executor(g).run_replicas(std::vector<std::vector<cpu::array>>(6));
    for (std::uint32_t r = 0; r < 6; ++r) {
        CHECK(outs[r][0].values<std::uint32_t>()[0] == r % 2);
        CHECK(outs[r][1].values<std::uint32_t>()[0] == r);  // one copy: replica_id itself
    }
    CHECK_THROWS_WITH((parallel::mesh{.degree = 2, .replicas = 0}.check()), Catch::Contains("copies must number at least 1"));
}

TEST_CASE("parallel: the memory plan is what the decoder's ranks hold") {
    const auto dir = fs::path(SCRIBE_TEST_DATA) / "gpt2-tiny-b";
    for (const std::int64_t tp : {1, 2, 4})
        for (const auto type : {dtype::f32, dtype::bf16}) {
            INFO("tp " << tp << " " << name(type));
            runtime::decoder<models::gpt2_family> lm(dir, {.type = type, .threads = 1, .tp = tp});
            const auto plan = lm.memory(2, 40);
            CHECK(plan.weights * static_cast<std::size_t>(tp) == lm.weight_bytes());  // all ranks are here
            const auto& c = lm.model_config();
            CHECK(plan.kv_cache == static_cast<std::size_t>(2 * c.n_layer * 2 * 40 * c.n_embd / tp) * info(type).bytes);
        }
}

TEST_CASE("parallel: weights borrowed from the files are copied into memory of their own unless keep_mapped, same logits") {
    const auto dir = fs::path(SCRIBE_TEST_DATA) / "gpt2-tiny-b";
    const std::vector<std::int32_t> ids{5, 7, 9, 11};
    for (const std::int64_t tp : {1, 2}) {
        INFO("tp " << tp);
        runtime::decoder<models::gpt2_family> mapped(dir, {.type = dtype::f32, .threads = 1, .tp = tp, .keep_mapped = true});
        runtime::decoder<models::gpt2_family> copied(dir, {.type = dtype::f32, .threads = 1, .tp = tp});
        CHECK(mapped.resident_bytes() == 0);
        CHECK(copied.weight_bytes() == mapped.weight_bytes());
        // TP 1 borrows every weight (f32, stored f32); TP 2 copies the parts that
        // are not contiguous in the file, and borrows the rest.
        if (tp == 1) CHECK(copied.resident_bytes() == copied.weight_bytes());
        else CHECK((copied.resident_bytes() > 0 && copied.resident_bytes() < copied.weight_bytes()));
        CHECK(copied.prompt_logits(ids) == mapped.prompt_logits(ids));
    }
    // Converted at load: a copy already, nothing more is copied.
    runtime::decoder<models::gpt2_family> bf16(dir, {.type = dtype::bf16, .threads = 1});
    CHECK(bf16.resident_bytes() == 0);
    CHECK(bf16.converted_bytes() == bf16.weight_bytes());
}

TEST_CASE("parallel: a pre-sharded folder that does not fit is refused, naming the file") {
    using Catch::Matchers::Contains;
    const auto src = fs::path(SCRIBE_TEST_DATA) / "gpt2-tiny-a";
    const auto dir = fs::temp_directory_path() / ("scribe_test_parallel_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    {
        runtime::decoder<models::gpt2_family> lm(src, {.type = dtype::f32, .threads = 1, .tp = 2});
        lm.save_sharded(dir);
    }
    fs::copy_file(src / "config.json", dir / "config.json");
    {  // read back: the same logits as cutting the checkpoint
        runtime::decoder<models::gpt2_family> cut(src, {.type = dtype::f32, .threads = 1, .tp = 2});
        runtime::decoder<models::gpt2_family> pre(dir, {.type = dtype::f32, .threads = 1, .tp = 2});
        CHECK(pre.presharded());
        CHECK(pre.prompt_logits({5, 7, 9}) == cut.prompt_logits({5, 7, 9}));
    }
    auto load = [&](std::int64_t tp) -> std::string {
        try {
            runtime::decoder<models::gpt2_family> lm(dir, {.type = dtype::f32, .threads = 1, .tp = tp});
        } catch (const scribe::error& e) {
            return e.what();
        }
        return "(loaded)";
    };
    // Rank 1's file holds rank 0's tensors under rank 1's name.
    fs::copy_file(runtime::rank_file(dir, 2, 0), runtime::rank_file(dir, 2, 1), fs::copy_options::overwrite_existing);
    CHECK_THAT(load(2), Contains("model.tp2-rank1.safetensors") && Contains("__metadata__ says tp_degree 2, rank 0") &&
                            Contains("this is rank 1 of 2"));
    // A rank file with a misshapen tensor.
    const io::safetensors r0(runtime::rank_file(dir, 2, 0));
    std::vector<io::tensor_to_write> ts;
    for (const auto& e : r0.tensors()) {
        auto shape = e.shape;
        auto bytes = r0.bytes(e.name);
        if (e.name == "h.1.mlp.c_fc.weight") shape = {36, 36}, bytes = bytes.first(36 * 36 * 4);
        ts.push_back({e.name, e.type, shape, bytes});
    }
    io::write_safetensors(dir / "tmp.safetensors", ts, {{"scribe.tp_degree", "2"}, {"scribe.rank", "1"}});
    fs::rename(dir / "tmp.safetensors", runtime::rank_file(dir, 2, 1));
    CHECK_THAT(load(2), Contains("model.tp2-rank1.safetensors: tensor `h.1.mlp.c_fc.weight` is [36, 36] but rank 1's part "
                                 "needs [36, 72]"));
    // A degree the folder was not sharded for, and no unsharded checkpoint beside it.
    CHECK_THAT(load(4), Contains("no model.safetensors"));
    fs::remove_all(dir);
}

}  // namespace test_parallel
