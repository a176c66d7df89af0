// The CPU backend on its own: inputs borrowed from the caller, xtensor interop,
// XLA's integer and index semantics, replicas with collectives, and clear errors.
// (Every op and dtype is also compared with XLA in tests/xla.)
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

#include <scribe/cpu.hpp>

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_cpu {

SCRIBE_DIM(hidden);
SCRIBE_DIM(vocab);
SCRIBE_DIM(tokens);

using namespace scribe;

TEST_CASE("cpu: an lm_head on xtensor inputs matches a plain loop") {
    graph g("lm_head");
    g.bind(hidden(5), vocab(7), tokens(3));
    auto h = g.parameter(f32[hidden, tokens], "h");
    auto w = g.parameter(f32[hidden, vocab], "w");
    g.outputs(dot<hidden>(w, h));
    xt::xarray<float> H = xt::xarray<float>::from_shape({5, 3});
    xt::xarray<float> W = xt::xarray<float>::from_shape({5, 7});
    for (std::size_t i = 0; i < H.size(); ++i) H.data()[i] = std::sin(static_cast<float>(i));
    for (std::size_t i = 0; i < W.size(); ++i) W.data()[i] = std::cos(static_cast<float>(i) * 0.3f);
    const auto out = cpu::executor(g)({{"h", cpu::borrow(H)}, {"w", cpu::borrow(W)}});
    REQUIRE(out.size() == 1);
    CHECK(out[0].dims() == shape{{"vocab", 7}, {"tokens", 3}});
    const auto logits = cpu::adapt<float>(out[0]);
    for (std::size_t v = 0; v < 7; ++v)
        for (std::size_t t = 0; t < 3; ++t) {
            double want = 0;
            for (std::size_t k = 0; k < 5; ++k) want += double(W(k, v)) * double(H(k, t));
            CHECK(logits(v, t) == Approx(want).epsilon(1e-5).margin(1e-6));
        }
}

TEST_CASE("cpu: inputs by name, in any order; bound ones are not inputs") {
    graph g("named");
    g.bind(hidden(3));
    auto z = g.parameter(f32[hidden], "zeta");
    auto a = g.parameter(f32[hidden], "alpha");
    auto m = g.parameter(f32[hidden], "mid");
    g.outputs(z - a * m);
    const std::vector<float> zv{10, 20, 30}, av{1, 2, 3}, mv{2, 2, 2};
    cpu::executor run(g);
    auto in = [](const std::vector<float>& v) { return cpu::array::borrow(dtype::f32, {{"hidden", 3}}, v.data(), v.size() * 4); };
    auto vals = [](const cpu::array& r) { const auto v = r.values<float>(); return std::vector<float>(v.begin(), v.end()); };
    CHECK(run.input_names() == std::vector<std::string>{"alpha", "mid", "zeta"});
    const auto want = std::vector<float>{8, 16, 24};
    CHECK(vals(run({{"mid", in(mv)}, {"zeta", in(zv)}, {"alpha", in(av)}})[0]) == want);
    CHECK(vals(run({in(av), in(mv), in(zv)})[0]) == want);  // parameter order
    CHECK(vals(run.run_replicas(std::vector<std::vector<cpu::input>>{
                  {{"zeta", in(zv)}, {"alpha", in(av)}, {"mid", in(mv)}}})[0][0]) == want);
    run.bind("mid", in(mv));
    CHECK(run.input_names() == std::vector<std::string>{"alpha", "zeta"});
    CHECK(vals(run({{"zeta", in(zv)}, {"alpha", in(av)}})[0]) == want);
    CHECK_THROWS_WITH(run({{"zeta", in(zv)}, {"alpha", in(av)}, {"mid", in(mv)}}),
                      Catch::Contains("parameter `mid` is bound"));
    CHECK_THROWS_WITH(run.bind("nope", in(mv)), Catch::Contains("has no parameter `nope`"));
    cpu::named_arrays owned;
    owned.emplace_back("zeta", cpu::array(in(zv)));
    owned.emplace_back("alpha", cpu::array(in(av)));
    CHECK(vals(run.run_donating(std::move(owned))[0]) == want);
}

TEST_CASE("cpu: an executor refuses a graph with an extent bound to a dimension it does not have") {
    graph g("typo");
    g.bind(hidden(3), tokens(2));
    g.outputs(exp(g.parameter(f32[hidden], "x")));
    CHECK_THROWS_WITH(cpu::executor(g), Catch::Contains("`tokens` (2)") && Catch::Contains("no tensor of the graph has that dimension"));
}

TEST_CASE("cpu: inputs are borrowed, never copied") {
    graph g("pass");
    g.bind(hidden(4));
    auto x = g.parameter(f32[hidden], "x");
    g.outputs(x, x * 2.0);
    std::vector<float> data = {1, 2, 3, 4};
    const auto in = cpu::array::borrow(dtype::f32, {{"hidden", 4}}, data.data(), data.size() * sizeof(float));
    CHECK(in.borrowed());
    CHECK_THROWS_WITH(cpu::array(in).mutable_data(), Catch::Contains("read-only"));
    const auto out = cpu::executor(g)({in});
    CHECK(out[0].data() == reinterpret_cast<const unsigned char*>(data.data()));  // a view, not a copy
    CHECK(out[1].values<float>()[3] == 8.0f);
}

TEST_CASE("cpu: resident_weights copies borrowed weights into shared blocks, keeps owned ones where they are") {
    cpu::resident_weights resident;
    // Borrowed (read in place from a file's map): copied, one after another, 64-byte aligned.
    std::vector<float> file(1000), more(17, 5.0f);
    for (std::size_t i = 0; i < file.size(); ++i) file[i] = 1.0f + static_cast<float>(i);
    const auto first = resident.keep(cpu::array::borrow(dtype::f32, {{"n", 1000}}, file.data(), file.size() * sizeof(float)));
    CHECK(first.data() != reinterpret_cast<const unsigned char*>(file.data()));
    CHECK(reinterpret_cast<std::uintptr_t>(first.data()) % 64 == 0);
    CHECK(first.values<float>()[0] == 1.0f);
    CHECK(first.values<float>()[999] == 1000.0f);
    const auto next = resident.keep(cpu::array::borrow(dtype::f32, {{"n", 17}}, more.data(), more.size() * sizeof(float)));
    CHECK(next.data() == first.data() + 4000 + 32);
    CHECK(next.values<float>()[16] == 5.0f);
    file.assign(file.size(), 0.0f);  // the copies no longer depend on their sources
    CHECK(first.values<float>()[999] == 1000.0f);
    // Owned (converted or quantized at load): kept as it is, not copied.
    auto owned = cpu::array::uninitialized(dtype::f32, {{"n", 300}});
    std::memset(owned.mutable_data(), 0, owned.bytes());
    const auto* where = owned.data();
    const auto kept = resident.keep(std::move(owned));
    CHECK_FALSE(kept.borrowed());
    CHECK(kept.data() == where);
    CHECK(resident.bytes() == (1000 + 17) * sizeof(float));
}

TEST_CASE("cpu: wrong inputs are refused with the parameter's name and both shapes") {
    graph g("check");
    g.bind(hidden(4), tokens(2));
    (void)g.parameter(f32[hidden, tokens], "x");
    g.outputs(g.parameter(s32[tokens], "ids"));
    cpu::executor run(g);
    const std::vector<float> x(8);
    const std::vector<std::int32_t> ids(2);
    const std::vector<float> wrong(6);
    // In parameter order ("ids" sorts before "x").
    CHECK_THROWS_WITH(run({cpu::array::borrow(dtype::s32, {{"", 2}}, ids.data(), 8),
                           cpu::array::borrow(dtype::f32, {{"", 3}, {"", 2}}, wrong.data(), 24)}),
                      Catch::Contains("parameter `x` is f32[hidden=4, tokens=2]") && Catch::Contains("input 1 is f32[3, 2]"));
    CHECK_THROWS_WITH(run({cpu::array::borrow(dtype::f32, {{"", 4}, {"", 2}}, x.data(), 32)}),
                      Catch::Contains("takes 2 inputs") && Catch::Contains("got 1"));
    // By name.
    const auto xs = cpu::array::borrow(dtype::f32, {{"", 4}, {"", 2}}, x.data(), 32);
    const auto is = cpu::array::borrow(dtype::s32, {{"", 2}}, ids.data(), 8);
    CHECK_THROWS_WITH(run({{"x", cpu::array::borrow(dtype::f32, {{"", 3}, {"", 2}}, wrong.data(), 24)}, {"ids", is}}),
                      Catch::Contains("parameter `x` is f32[hidden=4, tokens=2]"));
    CHECK_THROWS_WITH(run({{"x", xs}}), Catch::Contains("graph `check` needs input `ids`"));
    CHECK_THROWS_WITH(run({{"x", xs}, {"ids", is}, {"idz", is}}),
                      Catch::Contains("has no parameter `idz` (it has `ids`, `x`)"));
    CHECK_THROWS_WITH(run({{"x", xs}, {"x", xs}, {"ids", is}}), Catch::Contains("input `x` is given twice"));
    CHECK(run({{"x", xs}, {"ids", is}}).size() == 1);
    CHECK_THROWS_WITH(cpu::array::borrow(dtype::f32, {{"", 4}}, x.data(), 12),
                      Catch::Contains("needs 16 bytes, the buffer has 12"));
}

TEST_CASE("cpu: integers wrap and divide as XLA's do; floats saturate into integers") {
    graph g("ints");
    g.bind(tokens(4));
    auto a = g.parameter(s8[tokens], "a");
    auto b = g.parameter(s8[tokens], "b");
    auto f = g.parameter(f32[tokens], "f");
    g.outputs(a + b, a / b, convert<s8>(f));
    const std::vector<std::int8_t> av = {127, -128, 7, -7}, bv = {1, -1, 0, 2};
    const std::vector<float> fv = {1e9f, -1e9f, std::numeric_limits<float>::quiet_NaN(), -2.7f};
    const auto out = cpu::executor(g)({cpu::array::borrow(dtype::s8, {{"", 4}}, av.data(), 4),
                                       cpu::array::borrow(dtype::s8, {{"", 4}}, bv.data(), 4),
                                       cpu::array::borrow(dtype::f32, {{"", 4}}, fv.data(), 16)});
    const auto sum = out[0].values<std::int8_t>(), quot = out[1].values<std::int8_t>(), conv = out[2].values<std::int8_t>();
    CHECK(std::vector<int>(sum.begin(), sum.end()) == std::vector<int>{-128, 127, 7, -5});
    CHECK(std::vector<int>(quot.begin(), quot.end()) == std::vector<int>{127, -128, -1, -3});  // x/0 = -1, INT_MIN/-1 = INT_MIN
    CHECK(std::vector<int>(conv.begin(), conv.end()) == std::vector<int>{127, -128, 0, -2});
}

TEST_CASE("cpu: dynamic starts and gather indices are clamped into range") {
    graph g("clamp");
    g.bind(vocab(5), hidden(2), tokens(3));
    auto table = g.parameter(f32[vocab, hidden], "table");
    auto ids = g.parameter(s32[tokens], "ids");
    auto at = g.parameter(s32[], "at");
    g.outputs(gather<vocab>(table, ids), dynamic_slice<vocab>(table, at, 2));
    const std::vector<float> t = {0, 1, 10, 11, 20, 21, 30, 31, 40, 41};
    const std::vector<std::int32_t> i = {-3, 2, 99};
    const std::int32_t start = 4;  // clamped to 3 so that 2 rows fit
    const auto out = cpu::executor(g)({{"table", cpu::array::borrow(dtype::f32, {{"", 5}, {"", 2}}, t.data(), 40)},
                                       {"ids", cpu::array::borrow(dtype::s32, {{"", 3}}, i.data(), 12)},
                                       {"at", cpu::array::borrow(dtype::s32, {}, &start, 4)}});
    CHECK(out[0].dims() == shape{{"hidden", 2}, {"tokens", 3}});
    const auto rows = out[0].values<float>();
    CHECK(std::vector<float>(rows.begin(), rows.end()) == std::vector<float>{0, 20, 40, 1, 21, 41});
    const auto win = out[1].values<float>();
    CHECK(std::vector<float>(win.begin(), win.end()) == std::vector<float>{30, 31, 40, 41});
}

TEST_CASE("cpu: replicas run together; all_reduce and all_gather combine each group") {
    graph g("tp");
    g.bind(hidden(2));
    auto x = g.parameter(f32[hidden], "x");
    g.outputs(all_reduce_sum(x, replica_groups{{{0, 1}, {2, 3}}}), all_gather<hidden>(x, replica_groups::all(4)));
    std::vector<std::vector<float>> data = {{1, 2}, {10, 20}, {100, 200}, {1000, 2000}};
    std::vector<std::vector<cpu::array>> in;
    for (auto& d : data) in.push_back({cpu::array::borrow(dtype::f32, {{"", 2}}, d.data(), 8)});
    const auto out = cpu::executor(g).run_replicas(in);
    REQUIRE(out.size() == 4);
    CHECK(out[1][0].values<float>()[1] == 22.0f);
    CHECK(out[2][0].values<float>()[0] == 1100.0f);
    const auto gathered = out[3][1].values<float>();
    CHECK(std::vector<float>(gathered.begin(), gathered.end()) == std::vector<float>{1, 2, 10, 20, 100, 200, 1000, 2000});
    CHECK_THROWS_WITH(cpu::executor(g).run_replicas({in[0], in[1]}), Catch::Contains("names replica 2") &&
                                                                         Catch::Contains("the run has 2"));
}

namespace {
// C = A * B in double, for A and B given through strides.
std::vector<double> naive_gemm(std::int64_t m, std::int64_t n, std::int64_t k, const cpu::simd::matrix_view& a,
                               const cpu::simd::matrix_view& b) {
    std::vector<double> c(static_cast<std::size_t>(m * n));
    for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = 0; j < n; ++j) {
            double s = 0;
            for (std::int64_t q = 0; q < k; ++q) s += double(a.at(i, q)) * double(b.at(q, j));
            c[static_cast<std::size_t>(i * n + j)] = s;
        }
    return c;
}
}  // namespace

TEST_CASE("cpu simd: sgemm matches a double-precision loop at edge and block-crossing sizes, in every layout") {
    struct size3 { std::int64_t m, n, k; };
    for (const auto sz : {size3{1, 1, 1}, size3{15, 33, 7}, size3{14, 32, 385}, size3{170, 40, 20}, size3{3, 3100, 2},
                          size3{13, 57, 263},
                          // across the AVX2 blocking (k blocks up to 1024, 240 rows, 1536 columns):
                          // k = 1100 runs as two blocks of 550, C accumulated over them
                          size3{245, 20, 1100}, size3{7, 1560, 1030}}) {
        std::vector<float> a(static_cast<std::size_t>(sz.m * sz.k)), b(static_cast<std::size_t>(sz.k * sz.n));
        for (std::size_t i = 0; i < a.size(); ++i) a[i] = std::sin(0.37f * static_cast<float>(i));
        for (std::size_t i = 0; i < b.size(); ++i) b[i] = std::cos(0.11f * static_cast<float>(i));
        // Each operand row-major or transposed (column-major): the strides carry the
        // layout (a transposed B is a weight read as W^T, packed by 8 x 8 transposes).
        for (const bool a_transposed : {false, true})
            for (const bool b_transposed : {false, true}) {
                CAPTURE(sz.m, sz.n, sz.k, a_transposed, b_transposed);
                const auto av = a_transposed ? cpu::simd::matrix_view{a.data(), 1, sz.m} : cpu::simd::matrix_view{a.data(), sz.k, 1};
                const auto bv = b_transposed ? cpu::simd::matrix_view{b.data(), 1, sz.k} : cpu::simd::matrix_view{b.data(), sz.n, 1};
                std::vector<float> c(static_cast<std::size_t>(sz.m * sz.n), -7.0f);
                cpu::simd::sgemm(sz.m, sz.n, sz.k, av, bv, c.data(), sz.n);
                const auto want = naive_gemm(sz.m, sz.n, sz.k, av, bv);
                for (std::size_t i = 0; i < c.size(); ++i)
                    REQUIRE(c[i] == Approx(want[i]).margin(1e-4 * static_cast<double>(sz.k)));
            }
    }
}

TEST_CASE("cpu simd: a weight packed once serves column ranges that match a double-precision loop") {
    // k = 1300 crosses a k block on every kernel (256 deep, or 1024 with AVX2), so the
    // packed panels' block offsets must be those the blocked loops walk.
    const std::int64_t m = 9, n = 200, k = 1300;
    std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n));
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = std::sin(0.29f * static_cast<float>(i));
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = std::cos(0.13f * static_cast<float>(i));
    const cpu::simd::matrix_view av{a.data(), k, 1}, bv{b.data(), n, 1};
    const cpu::simd::packed_matrix packed(bv, k, n);
    const auto want = naive_gemm(m, n, k, av, bv);
    const auto n0 = packed.nr();  // a range that starts at the second panel
    std::vector<float> c(static_cast<std::size_t>(m * n), -7.0f);
    cpu::simd::sgemm(m, n - n0, av, packed, n0, c.data() + n0, n);
    for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = 0; j < n; ++j) {
            CAPTURE(i, j);
            const auto got = c[static_cast<std::size_t>(i * n + j)];
            if (j < n0) REQUIRE(got == -7.0f);  // outside the range: untouched
            else REQUIRE(got == Approx(want[static_cast<std::size_t>(i * n + j)]).margin(1e-4 * static_cast<double>(k)));
        }
}

namespace {
// How this CPU packs the bound weight of an m x k by k x n product of `element` values.
template <class Element>
cpu::kernels::packed_weight packed_for(Element element, dtype type, std::int64_t m, std::int64_t n, std::int64_t k) {
    graph g("packed_for");
    g.bind(hidden(k), vocab(n), tokens(std::max<std::int64_t>(m, 2)));
    auto x = g.parameter(element[tokens, hidden], "x");
    auto w = g.parameter(element[hidden, vocab], "w");
    auto y = dot<hidden>(x, w);
    return cpu::kernels::pack_rhs(y.ir(), x.ir().dims, type, cpu::array(type, w.ir().dims), false, 1);
}
}  // namespace

TEST_CASE("cpu simd: bf16 products take the pair kernels only where the CPU has them, always where it has AMX, the same choice each time") {
    namespace d = cpu::simd::detail;
    const bool pairs = d::bf16_pairs_preferred();
    if (!d::has_avx512bf16()) CHECK_FALSE(pairs);
    if (d::has_amx_bf16() && d::has_avx512f()) CHECK(pairs);
    // Asked again, the same answer (the executor's packs and the artifact's machine key
    // depend on it).
    for (int i = 0; i < 3; ++i) CHECK(d::bf16_pairs_preferred() == pairs);
#ifdef SCRIBE_X86
    // By vendor where the vendor tells it: Intel's cores without AMX issue vdpbf16ps at
    // half the FMA's rate, AMD's at its rate.
    __builtin_cpu_init();
    if (d::has_avx512bf16() && !d::has_amx_bf16() && __builtin_cpu_is("intel")) CHECK_FALSE(pairs);
    if (d::has_avx512bf16() && __builtin_cpu_is("amd")) CHECK(pairs);
    // And made again while every other hardware thread runs FMAs, the same answer
    // (timed, two processes once chose differently on one machine under the test
    // suite's load, and the artifact one compiled was refused by the other).
    std::atomic<bool> stop{false};
    std::vector<std::thread> load;
    const unsigned others = std::max(1u, std::thread::hardware_concurrency()) - 1;
    for (unsigned t = 0; t < others; ++t)
        load.emplace_back([&] {
            while (!stop.load(std::memory_order_relaxed))
                if (d::has_avx512f()) (void)d::time_fmas(4000);
        });
    bool same = true;
    for (int i = 0; i < 3; ++i) same = same && d::bf16_pairs_decided() == pairs;
    stop = true;
    for (auto& t : load) t.join();
    CHECK(same);
#endif
}

TEST_CASE("cpu simd: the bf16 pair GEMM (AVX512_BF16, and AMX where the CPU has it) matches a double-precision loop over the same bf16 values") {
    struct size3 { std::int64_t m, n, k; };
    auto bf = [](float v) { return bfloat16{f32_to_bf16_bits(v)}; };
    // AMX's cases: k blocks whose pairs end in a short step (7, 385, 600, 1000),
    // two k blocks of 768 (1000), rows past its 32-row tiles and 1024-row A blocks
    // (170, 300, 33, 1100), columns past its 32-wide and 512-wide blocks (33, 100,
    // 3100, 65, 600), odd k (7, 385). Every layout of A and B packs differently:
    // rows or columns of each.
    cpu::thread_pool pool(2);
    for (const auto sz : {size3{1, 1, 1}, size3{15, 33, 7}, size3{14, 32, 385}, size3{170, 100, 20}, size3{9, 3100, 2},
                          size3{128, 96, 768}, size3{300, 65, 600}, size3{33, 64, 32}, size3{1100, 40, 70}, size3{40, 600, 1000}})
    for (const bool a_columns : {false, true})
    for (const bool b_columns : {false, true}) {
        std::vector<bfloat16> a(static_cast<std::size_t>(sz.m * sz.k)), b(static_cast<std::size_t>(sz.k * sz.n));
        for (std::size_t i = 0; i < a.size(); ++i) a[i] = bf(std::sin(0.37f * static_cast<float>(i)));
        for (std::size_t i = 0; i < b.size(); ++i) b[i] = bf(std::cos(0.11f * static_cast<float>(i)));
        const cpu::simd::basic_matrix_view<bfloat16> av = a_columns ? cpu::simd::basic_matrix_view<bfloat16>{a.data(), 1, sz.m}
                                                                    : cpu::simd::basic_matrix_view<bfloat16>{a.data(), sz.k, 1};
        const cpu::simd::basic_matrix_view<bfloat16> bv = b_columns ? cpu::simd::basic_matrix_view<bfloat16>{b.data(), 1, sz.k}
                                                                    : cpu::simd::basic_matrix_view<bfloat16>{b.data(), sz.n, 1};
        {
            // The executor packs a bf16 weight in pairs where their kernels outrun the f32 FMAs,
            // else as f32 panels (its values widened); the pair kernels are tested below wherever
            // the CPU has them, chosen or not.
            const auto packed = packed_for(bf16, dtype::bf16, sz.m, sz.n, sz.k);
            const bool pairs = cpu::simd::detail::bf16_pairs_preferred();
            REQUIRE(packed.pairs.rows() == (pairs ? sz.k : 0));
            REQUIRE(packed.f32.rows() == (pairs ? 0 : sz.k));
        }
        if (!cpu::simd::detail::has_avx512bf16()) continue;
        const cpu::simd::packed_pairs bp(bv, sz.k, sz.n);
        std::vector<double> want(static_cast<std::size_t>(sz.m * sz.n));
        for (std::int64_t i = 0; i < sz.m; ++i)
            for (std::int64_t j = 0; j < sz.n; ++j)
                for (std::int64_t k = 0; k < sz.k; ++k) want[static_cast<std::size_t>(i * sz.n + j)] += double(av.at(i, k)) * bv.at(k, j);
        auto check = [&](const std::vector<float>& c, std::int64_t n0) {
            for (std::int64_t i = 0; i < sz.m; ++i)
                for (std::int64_t j = 0; j < sz.n; ++j) {
                    const auto got = c[static_cast<std::size_t>(i * sz.n + j)];
                    if (j < n0) REQUIRE(got == -7.0f);
                    else REQUIRE(got == Approx(want[static_cast<std::size_t>(i * sz.n + j)]).margin(1e-5 * static_cast<double>(sz.k)));
                }
        };
        for (const bool amx : {false, true}) {
            if (amx && !cpu::simd::detail::has_amx_bf16()) continue;
            CAPTURE(sz.m, sz.n, sz.k, a_columns, b_columns, amx);
            // Packed once: all columns, and a range from the second panel (the first untouched).
            for (const std::int64_t n0 : {std::int64_t{0}, bp.nr()}) {
                if (n0 >= sz.n) continue;
                std::vector<float> c(static_cast<std::size_t>(sz.m * sz.n), -7.0f);
                cpu::simd::bf16_gemm(sz.m, sz.n - n0, av, bp, n0, c.data() + n0, sz.n, amx);
                check(c, n0);
            }
            // Rounded to bf16 as each block is finished (on AMX from the tiles), into rows 3 wider than
            // the result: equal, bit for bit, to the f32 result above rounded by the scalar code; the
            // columns before n0 and past n untouched. The f32 block only where partial sums need it.
            for (const std::int64_t n0 : {std::int64_t{0}, bp.nr()}) {
                if (n0 >= sz.n) continue;
                std::vector<float> c(static_cast<std::size_t>(sz.m * sz.n), -7.0f);
                cpu::simd::bf16_gemm(sz.m, sz.n - n0, av, bp, n0, c.data() + n0, sz.n, amx);
                check(c, n0);
                const std::int64_t ldo = sz.n + 3;
                const auto fill = bf(-5.0f);
                std::vector<bfloat16> out(static_cast<std::size_t>(sz.m * ldo), fill);
                const bool partials = !amx || cpu::simd::bf16_gemm_needs_f32(bp);
                std::vector<float> scratch(partials ? static_cast<std::size_t>(sz.m * sz.n) : 0);
                cpu::simd::bf16_gemm(sz.m, sz.n - n0, av, bp, n0, {out.data() + n0, ldo}, partials ? scratch.data() + n0 : nullptr,
                                     sz.n, amx);
                for (std::int64_t i = 0; i < sz.m; ++i)
                    for (std::int64_t j = 0; j < ldo; ++j) {
                        const auto got = out[static_cast<std::size_t>(i * ldo + j)].bits;
                        if (j < n0 || j >= sz.n) REQUIRE(got == fill.bits);
                        else REQUIRE(got == f32_to_bf16_bits(c[static_cast<std::size_t>(i * sz.n + j)]));
                    }
            }
            // B packed a block at a time as the product runs (two activations).
            std::vector<float> c(static_cast<std::size_t>(sz.m * sz.n), -7.0f);
            cpu::simd::bf16_gemm(sz.m, sz.n, sz.k, av, bv, c.data(), sz.n, amx);
            check(c, 0);
        }
        // The rounded form over two threads (columns split), as the executor runs a weight's product.
        {
            std::vector<float> c(static_cast<std::size_t>(sz.m * sz.n), -7.0f);
            cpu::simd::bf16_gemm(sz.m, sz.n, av, bp, 0, c.data(), sz.n);
            std::vector<bfloat16> out(static_cast<std::size_t>(sz.m * sz.n));
            std::vector<float> scratch(cpu::simd::bf16_gemm_needs_f32(bp) ? static_cast<std::size_t>(sz.m * sz.n) : 0);
            cpu::gemm(&pool, sz.m, av, bp, out.data(), sz.n, scratch.empty() ? nullptr : scratch.data(), sz.n);
            for (std::size_t i = 0; i < out.size(); ++i) REQUIRE(out[i].bits == f32_to_bf16_bits(c[i]));
        }
        // Over two threads (rows split for a tall result, else columns), as the executor runs it.
        std::vector<float> c(static_cast<std::size_t>(sz.m * sz.n), -7.0f);
        cpu::gemm(&pool, sz.m, sz.n, sz.k, av, bv, c.data(), sz.n);
        check(c, 0);
    }
}

TEST_CASE("cpu simd: f16 products split into bf16 hi and lo pairs (AMX) match a double-precision loop over the same f16 values") {
    struct size3 { std::int64_t m, n, k; };
    auto h = [](float v) { return half{f32_to_f16_bits(v)}; };
    // Values whose low mantissa bits are set (so lo is not zero), some tiny (f16
    // subnormals), and A's and B's layouts as in the bf16 case above.
    for (const auto sz : {size3{1, 1, 1}, size3{15, 33, 7}, size3{14, 32, 385}, size3{170, 100, 20}, size3{128, 96, 768},
                          size3{33, 64, 600}})
    for (const bool a_columns : {false, true}) {
        std::vector<half> a(static_cast<std::size_t>(sz.m * sz.k)), b(static_cast<std::size_t>(sz.k * sz.n));
        for (std::size_t i = 0; i < a.size(); ++i) a[i] = h(3.3f * std::sin(0.37f * static_cast<float>(i)) * (i % 17 == 3 ? 1e-6f : 1.0f));
        for (std::size_t i = 0; i < b.size(); ++i) b[i] = h(1.7f * std::cos(0.11f * static_cast<float>(i)));
        const cpu::simd::basic_matrix_view<half> av = a_columns ? cpu::simd::basic_matrix_view<half>{a.data(), 1, sz.m}
                                                                : cpu::simd::basic_matrix_view<half>{a.data(), sz.k, 1};
        const cpu::simd::basic_matrix_view<half> bv{b.data(), 1, sz.k};
        const auto packed = packed_for(f16, dtype::f16, sz.m, sz.n, sz.k);
        if (!cpu::simd::detail::has_amx_bf16()) {  // such a CPU packs f16 weights as f32 panels
            REQUIRE(packed.f16.rows() == 0);
            REQUIRE(packed.f32.rows() == sz.k);
            continue;
        }
        REQUIRE(packed.f16.rows() == sz.k);
        const cpu::simd::split_pairs bp(bv, sz.k, sz.n);
        // Each result's bound: the dropped lo x lo terms are below 2^-16 of each
        // product (2^-9 of each factor), and k f32 additions add k ulps of the sum of |a b|.
        std::vector<double> want(static_cast<std::size_t>(sz.m * sz.n)), margin(want.size());
        for (std::int64_t i = 0; i < sz.m; ++i)
            for (std::int64_t j = 0; j < sz.n; ++j) {
                double s = 0, abs_sum = 0;
                for (std::int64_t k = 0; k < sz.k; ++k) {
                    s += double(av.at(i, k)) * bv.at(k, j);
                    abs_sum += std::abs(double(av.at(i, k)) * bv.at(k, j));
                }
                want[static_cast<std::size_t>(i * sz.n + j)] = s;
                margin[static_cast<std::size_t>(i * sz.n + j)] = abs_sum * (std::ldexp(1.0, -16) + std::ldexp(double(sz.k), -24)) + 1e-30;
            }
        std::vector<bfloat16> hi(static_cast<std::size_t>(sz.m * sz.k)), lo(hi.size());
        cpu::simd::split_rows(av, sz.m, sz.k, hi.data(), lo.data());
        for (std::int64_t i = 0; i < sz.m; ++i)  // hi + lo is a exactly
            for (std::int64_t k = 0; k < sz.k; ++k) {
                const auto at = static_cast<std::size_t>(i * sz.k + k);
                REQUIRE(double(bf16_bits_to_f32(hi[at].bits)) + bf16_bits_to_f32(lo[at].bits) == double(av.at(i, k)));
            }
        const cpu::simd::basic_matrix_view<bfloat16> ah{hi.data(), sz.k, 1}, al{lo.data(), sz.k, 1};
        CAPTURE(sz.m, sz.n, sz.k, a_columns);
        for (const std::int64_t n0 : {std::int64_t{0}, bp.nr()}) {
            if (n0 >= sz.n) continue;
            std::vector<float> c(static_cast<std::size_t>(sz.m * sz.n), -7.0f);
            cpu::simd::f16_split_gemm(sz.m, sz.n - n0, ah, al, bp, n0, c.data() + n0, sz.n);
            for (std::int64_t i = 0; i < sz.m; ++i)
                for (std::int64_t j = 0; j < sz.n; ++j) {
                    const auto got = c[static_cast<std::size_t>(i * sz.n + j)];
                    if (j < n0) REQUIRE(got == -7.0f);
                    else REQUIRE(got == Approx(want[static_cast<std::size_t>(i * sz.n + j)]).margin(margin[static_cast<std::size_t>(i * sz.n + j)]));
                }
        }
    }
}

TEST_CASE("cpu simd: sgemv_rows matches a double-precision loop") {
    for (const std::int64_t m : {1, 17, 300}) {
        const std::int64_t k = 23, ldw = m + 3;  // a row stride wider than the row
        std::vector<float> w(static_cast<std::size_t>(k * ldw)), x(static_cast<std::size_t>(k)), y(static_cast<std::size_t>(m));
        for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.5f * static_cast<float>(i));
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = 1.0f - 0.1f * static_cast<float>(i);
        cpu::simd::sgemv_rows(m, k, x.data(), w.data(), ldw, y.data());
        for (std::int64_t j = 0; j < m; ++j) {
            double s = 0;
            for (std::int64_t r = 0; r < k; ++r) s += double(x[static_cast<std::size_t>(r)]) * w[static_cast<std::size_t>(r * ldw + j)];
            REQUIRE(y[static_cast<std::size_t>(j)] == Approx(s).margin(1e-4));
        }
    }
}

TEST_CASE("cpu simd: sgemv_dots (one dot per weight row) matches a double-precision loop for f32, f16 and bf16 weights") {
    // k crosses the vector loop's blocks of 64, 32 and 16 and leaves a scalar tail;
    // m crosses the groups of sixteen rows whose sums are reduced together.
    for (const std::int64_t k : {1, 7, 8, 16, 33, 64, 77, 130})
        for (const std::int64_t m : {1, 15, 16, 19, 48}) {
            const std::int64_t ldw = k + 5;  // a row stride wider than the row
            std::vector<float> w(static_cast<std::size_t>(m * ldw)), x(static_cast<std::size_t>(k));
            std::vector<half> wh(w.size());
            std::vector<bfloat16> wb(w.size()), xb(x.size());
            for (std::size_t i = 0; i < w.size(); ++i) {
                w[i] = std::sin(0.7f * static_cast<float>(i));
                wh[i].bits = f32_to_f16_bits(w[i]);
                wb[i].bits = f32_to_bf16_bits(w[i]);
            }
            for (std::size_t i = 0; i < x.size(); ++i) {
                x[i] = 1.0f - 0.05f * static_cast<float>(i);
                xb[i].bits = f32_to_bf16_bits(x[i]);
            }
            // One value more than the rows: a kernel that stores past its m rows changes it.
            std::vector<float> y(static_cast<std::size_t>(m + 1), -7.0f), yh(y), yb(y), ybb(y);
            cpu::simd::sgemv_dots(m, k, x.data(), w.data(), ldw, y.data());
            cpu::simd::sgemv_dots(m, k, x.data(), wh.data(), ldw, yh.data());
            cpu::simd::sgemv_dots(m, k, x.data(), wb.data(), ldw, yb.data());
            cpu::simd::sgemv_dots(m, k, xb.data(), wb.data(), ldw, ybb.data());  // x in bf16 too (vdpbf16ps where it runs)
            for (std::int64_t n = 0; n < m; ++n) {
                double s = 0, sh = 0, sb = 0, sbb = 0;
                for (std::int64_t j = 0; j < k; ++j) {
                    const auto i = static_cast<std::size_t>(n * ldw + j);
                    const double xj = x[static_cast<std::size_t>(j)];
                    s += xj * w[i];
                    sh += xj * f16_bits_to_f32(wh[i].bits);
                    sb += xj * bf16_bits_to_f32(wb[i].bits);
                    sbb += double(bf16_bits_to_f32(xb[static_cast<std::size_t>(j)].bits)) * bf16_bits_to_f32(wb[i].bits);
                }
                CAPTURE(k, m, n);
                REQUIRE(y[static_cast<std::size_t>(n)] == Approx(s).margin(1e-4));
                REQUIRE(yh[static_cast<std::size_t>(n)] == Approx(sh).margin(1e-4));
                REQUIRE(yb[static_cast<std::size_t>(n)] == Approx(sb).margin(1e-4));
                REQUIRE(ybb[static_cast<std::size_t>(n)] == Approx(sbb).margin(1e-4));
            }
            for (const auto* v : {&y, &yh, &yb, &ybb}) REQUIRE((*v)[static_cast<std::size_t>(m)] == -7.0f);
        }
}

TEST_CASE("cpu simd: batched_dots and batched_rows (decode attention, heads interleaved in the cache's rows) match a double-precision loop") {
    // W element (b, n, k) at b * sb + n * sn + k, with padding between batches and
    // rows; M rows per batch crosses every compiled group size; N crosses the blocks
    // of sixteen keys whose sums are reduced together; a sub-range of keys (dots) or
    // of batches (rows) leaves the rest of y as it was.
    // Dots have a kernel on AVX-512 and AVX2 CPUs, rows on AVX-512 ones; where
    // one has none it refuses, and the dot's other paths run.
    namespace simd = cpu::simd;
    const bool dots = simd::batched_dots_available(1, 16), rows = simd::batched_rows_available(1, 16);
    {
        const float x = 0, w = 0;
        float y = 0;
        if (!dots) REQUIRE_THROWS_AS(simd::batched_dots(1, 1, 0, 1, 16, &x, &w, 16, 16, &y, 1), error);
        if (!rows) REQUIRE_THROWS_AS(simd::batched_rows(1, 0, 1, 1, 16, &x, &w, 16, 16, &y), error);
    }
    for (auto available : {simd::batched_dots_available, simd::batched_rows_available}) {
        REQUIRE_FALSE(available(9, 16));
        REQUIRE_FALSE(available(2, 24));
    }
    if (!dots) return;
    auto check = [rows](auto tag) {
        using W = decltype(tag);
        for (const std::int64_t B : {2, 5})
            for (int M = 1; M <= simd::batched_gemv_max_rows; ++M)
                for (const std::int64_t K : {16, 64, 80})
                    for (const std::int64_t N : {1, 15, 16, 17, 40}) {
                        CAPTURE(sizeof(W), B, M, K, N);
                        const std::int64_t sb = K + 3, sn = B * sb + 5;  // (rows: each batch's row of K values)
                        std::vector<W> w(static_cast<std::size_t>(N * sn));
                        std::vector<double> wd(w.size());
                        for (std::size_t i = 0; i < w.size(); ++i) {
                            const float v = std::sin(0.37f * static_cast<float>(i)) * 2.0f;
                            if constexpr (std::is_same_v<W, float>) w[i] = v;
                            else if constexpr (std::is_same_v<W, half>) w[i].bits = f32_to_f16_bits(v);
                            else w[i].bits = f32_to_bf16_bits(v);
                            wd[i] = simd::to_f32(w[i]);
                        }
                        // dots: x [B][M][K], y [B][M][N] for keys n0 <= n < N
                        std::vector<float> x(static_cast<std::size_t>(B * M * K));
                        for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.21f * static_cast<float>(i));
                        const std::int64_t n0 = N > 3 ? 3 : 0;
                        std::vector<float> y(static_cast<std::size_t>(B * M * N + 1), -7.0f);
                        simd::batched_dots(M, B, n0, N, K, x.data(), w.data(), sb, sn, y.data(), N);
                        for (std::int64_t b = 0; b < B; ++b)
                            for (std::int64_t m = 0; m < M; ++m)
                                for (std::int64_t n = 0; n < N; ++n) {
                                    const auto at = static_cast<std::size_t>((b * M + m) * N + n);
                                    if (n < n0) {
                                        REQUIRE(y[at] == -7.0f);
                                        continue;
                                    }
                                    double s = 0;
                                    for (std::int64_t k = 0; k < K; ++k)
                                        s += double(x[static_cast<std::size_t>((b * M + m) * K + k)]) * wd[static_cast<std::size_t>(b * sb + n * sn + k)];
                                    REQUIRE(y[at] == Approx(s).margin(1e-4));
                                }
                        REQUIRE(y.back() == -7.0f);
                        if (!rows) continue;
                        // rows: x [B][M][N] (the probabilities), y [B][M][K] for batches b0 <= b < B
                        std::vector<float> p(static_cast<std::size_t>(B * M * N));
                        for (std::size_t i = 0; i < p.size(); ++i) p[i] = std::cos(0.13f * static_cast<float>(i)) * 0.5f;
                        std::vector<float> z(static_cast<std::size_t>(B * M * K + 1), -7.0f);
                        simd::batched_rows(M, 1, B, N, K, p.data(), w.data(), sb, sn, z.data());
                        for (std::int64_t b = 0; b < B; ++b)
                            for (std::int64_t m = 0; m < M; ++m)
                                for (std::int64_t j = 0; j < K; ++j) {
                                    const auto at = static_cast<std::size_t>((b * M + m) * K + j);
                                    if (b == 0) {
                                        REQUIRE(z[at] == -7.0f);
                                        continue;
                                    }
                                    double s = 0;
                                    for (std::int64_t n = 0; n < N; ++n)
                                        s += double(p[static_cast<std::size_t>((b * M + m) * N + n)]) * wd[static_cast<std::size_t>(b * sb + n * sn + j)];
                                    REQUIRE(z[at] == Approx(s).margin(1e-4));
                                }
                        REQUIRE(z.back() == -7.0f);
                    }
    };
    check(float{});
    check(half{});
    check(bfloat16{});
}

TEST_CASE("cpu simd: f16 and bf16 weights in sgemv_rows match the f32 product of the same values") {
    const std::int64_t m = 37, k = 9;
    std::vector<float> w(static_cast<std::size_t>(m * k)), x(static_cast<std::size_t>(k));
    std::vector<half> wh(w.size());
    std::vector<bfloat16> wb(w.size());
    for (std::size_t i = 0; i < w.size(); ++i) {
        w[i] = std::sin(0.3f * static_cast<float>(i));
        wh[i].bits = f32_to_f16_bits(w[i]);
        wb[i].bits = f32_to_bf16_bits(w[i]);
    }
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.5f + 0.25f * static_cast<float>(i);
    std::vector<float> yh(static_cast<std::size_t>(m)), yb(static_cast<std::size_t>(m));
    cpu::simd::sgemv_rows(m, k, x.data(), wh.data(), m, yh.data());
    cpu::simd::sgemv_rows(m, k, x.data(), wb.data(), m, yb.data());
    for (std::int64_t j = 0; j < m; ++j) {
        double sh = 0, sb = 0;  // the same widened weights, summed in double
        for (std::int64_t r = 0; r < k; ++r) {
            const auto i = static_cast<std::size_t>(r * m + j);
            sh += double(x[static_cast<std::size_t>(r)]) * f16_bits_to_f32(wh[i].bits);
            sb += double(x[static_cast<std::size_t>(r)]) * bf16_bits_to_f32(wb[i].bits);
        }
        REQUIRE(yh[static_cast<std::size_t>(j)] == Approx(sh).margin(1e-4));
        REQUIRE(yb[static_cast<std::size_t>(j)] == Approx(sb).margin(1e-4));
    }
}

#ifdef SCRIBE_X86
TEST_CASE("cpu simd: the bf16 products of each AVX2 kernel (256-bit, Zen 1's 128-bit rows, the lane-split dots) match a double loop") {
    if (!cpu::simd::detail::has_avx2_fma_f16c()) return;
    using rows_kernel = void (*)(std::int64_t, std::int64_t, const float*, const bfloat16*, std::int64_t, float*);
    const std::pair<const char*, std::pair<rows_kernel, rows_kernel>> kernels[] = {
        {"avx2 widening", {cpu::simd::detail::gemv_rows_avx2<bfloat16>, cpu::simd::detail::gemv_dots_avx2<bfloat16>}},
        {"sse rows (zen 1), lane-split dots",
         {cpu::simd::detail::gemv_rows_sse<bfloat16>, cpu::simd::detail::gemv_dots_bf16_avx2}},
    };
    // m crosses the rows kernel's 16 outputs a step and leaves a scalar tail; k its
    // passes of 8 rows, the widening dots kernel's blocks of 32 and 8 and its tail,
    // and the lane-split one's steps of 32 and 16 and its tail (x reordered to k
    // rounded down to 16: 16, 48 and 50 end a step of 16 after the steps of 32).
    for (const std::int64_t m : {1, 15, 16, 17, 40})
        for (const std::int64_t k : {1, 7, 8, 9, 16, 33, 48, 50, 77}) {
            const std::int64_t ldw = std::max(m, k) + 3;  // a row stride wider than either use needs
            std::vector<bfloat16> w(static_cast<std::size_t>(std::max(m, k) * ldw));
            std::vector<float> x(static_cast<std::size_t>(std::max(m, k)));
            for (std::size_t i = 0; i < w.size(); ++i) w[i].bits = f32_to_bf16_bits(std::sin(0.37f * static_cast<float>(i)) * 3.0f);
            for (std::size_t i = 0; i < x.size(); ++i) x[i] = 1.0f - 0.03f * static_cast<float>(i);
            auto wv = [&](std::int64_t r, std::int64_t c) { return double(bf16_bits_to_f32(w[static_cast<std::size_t>(r * ldw + c)].bits)); };
            for (const auto& [name, kernel] : kernels) {
                INFO(name << ": m " << m << ", k " << k);
                std::vector<float> y(static_cast<std::size_t>(m + 1), -7.0f);  // one more: never written
                kernel.first(m, k, x.data(), w.data(), ldw, y.data());  // y = x[0:k] . W[0:k, 0:m]
                for (std::int64_t j = 0; j < m; ++j) {
                    double s = 0;
                    for (std::int64_t r = 0; r < k; ++r) s += double(x[static_cast<std::size_t>(r)]) * wv(r, j);
                    CHECK(y[static_cast<std::size_t>(j)] == Approx(s).margin(1e-4));
                }
                CHECK(y[static_cast<std::size_t>(m)] == -7.0f);
                std::fill(y.begin(), y.end(), -7.0f);
                kernel.second(m, k, x.data(), w.data(), ldw, y.data());  // y = W[0:m, 0:k] . x[0:k]
                for (std::int64_t n = 0; n < m; ++n) {
                    double s = 0;
                    for (std::int64_t j = 0; j < k; ++j) s += double(x[static_cast<std::size_t>(j)]) * wv(n, j);
                    CHECK(y[static_cast<std::size_t>(n)] == Approx(s).margin(1e-4));
                }
                CHECK(y[static_cast<std::size_t>(m)] == -7.0f);
            }
        }
}
#endif

namespace {

// One instruction set's array conversions (simd/convert.hpp), as function pointers.
struct conversions {
    const char* name;
    void (*widen_h)(const half*, float*, std::int64_t);
    void (*widen_b)(const bfloat16*, float*, std::int64_t);
    void (*narrow_h)(const float*, half*, std::int64_t);
    void (*narrow_b)(const float*, bfloat16*, std::int64_t);
    void (*round_h)(float*, std::int64_t);
    void (*round_b)(float*, std::int64_t);
};

// The fused kernel's bf16 rounding, done in the pass that computes a value
// (simd::map1<true>), applied to the identity: x rounded in place.
void round_b_in_pass(float* x, std::int64_t n) {
    cpu::simd::map1<true>(x, x, n, [](cpu::simd::fbatch v) { return v; }, [](float v) { return v; });
}

}  // namespace

TEST_CASE("cpu simd: array conversions to and from f16/bf16 are bit-exact with the scalar ones") {
    // Every f16 and bf16 bit pattern widened; f32 patterns narrowed: the 16-bit
    // values, the halfway points between neighbours (ties to even), values near
    // them, f16's overflow and subnormal ranges, infinities and NaNs of both signs.
    // The dispatched functions, and each instruction set's this CPU runs (AVX2 on
    // an AVX-512 machine too).
    std::vector<conversions> sets{{"dispatched", cpu::simd::widen<half>, cpu::simd::widen<bfloat16>, cpu::simd::narrow<half>,
                                   cpu::simd::narrow<bfloat16>, cpu::simd::round_through<half>, cpu::simd::round_through<bfloat16>},
                                  {"bf16 rounded in the computing pass (the fused kernel's, at the build's vector width)",
                                   cpu::simd::widen<half>, cpu::simd::widen<bfloat16>, cpu::simd::narrow<half>,
                                   cpu::simd::narrow<bfloat16>, cpu::simd::round_through<half>, round_b_in_pass}};
#ifdef SCRIBE_X86
    namespace d = cpu::simd::detail;
    if (d::has_avx2_fma_f16c()) {
        sets.push_back({"avx2", d::widen_avx2<half>, d::widen_avx2<bfloat16>, d::narrow_avx2<half>, d::narrow_avx2<bfloat16>,
                        d::round_avx2<half>, d::round_avx2<bfloat16>});
        sets.push_back({"avx2, Zen 1's 128-bit bf16 widening", d::widen_avx2<half>, d::widen_zen1, d::narrow_avx2<half>,
                        d::narrow_avx2<bfloat16>, d::round_avx2<half>, d::round_avx2<bfloat16>});
    }
    if (d::has_avx512f())
        sets.push_back({"avx512", d::widen_avx512<half>, d::widen_avx512<bfloat16>, d::narrow_avx512<half>, d::narrow_avx512<bfloat16>,
                        d::round_avx512<half>, d::round_avx512<bfloat16>});
#endif
    std::vector<std::uint16_t> all(65536);
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i);
    std::vector<float> x;
    for (std::uint32_t h = 0; h < 65536; ++h) {
        const std::uint32_t f16 = std::bit_cast<std::uint32_t>(f16_bits_to_f32(static_cast<std::uint16_t>(h)));
        const std::uint32_t bf = h << 16;
        for (std::uint32_t base : {f16, bf})
            for (std::uint32_t d : {0u, 1u, 0xfffu, 0x1000u, 0x1001u, 0x7fffu, 0x8000u, 0x8001u})
                x.push_back(std::bit_cast<float>(base + d));
    }
    for (float v : {65504.0f, 65519.0f, 65520.0f, 1e30f, 5.96e-8f, 2.98e-8f, 2.99e-8f, 1e-40f})
        for (float s : {1.0f, -1.0f}) x.push_back(s * v);
    for (std::uint32_t bits : {0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u, 0x7f800001u, 0x7fbfffffu})
        x.push_back(std::bit_cast<float>(bits));
    x.push_back(1.5f);  // not a multiple of the vector widths: a scalar tail
    const auto n = static_cast<std::int64_t>(x.size());
    for (const auto& c : sets) {
        INFO(c.name);
        std::vector<float> wide(all.size());
        c.widen_h(reinterpret_cast<const half*>(all.data()), wide.data(), 65536);
        for (std::size_t i = 0; i < all.size(); ++i)
            REQUIRE(std::bit_cast<std::uint32_t>(wide[i]) == std::bit_cast<std::uint32_t>(f16_bits_to_f32(all[i])));
        c.widen_b(reinterpret_cast<const bfloat16*>(all.data()), wide.data(), 65536);
        for (std::size_t i = 0; i < all.size(); ++i)
            REQUIRE(std::bit_cast<std::uint32_t>(wide[i]) == std::bit_cast<std::uint32_t>(bf16_bits_to_f32(all[i])));
        std::vector<half> h(x.size());
        std::vector<bfloat16> b(x.size());
        c.narrow_h(x.data(), h.data(), n);
        c.narrow_b(x.data(), b.data(), n);
        std::vector<float> rh = x, rb = x;
        c.round_h(rh.data(), n);
        c.round_b(rb.data(), n);
        std::size_t wrong = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            const auto eh = f32_to_f16_bits(x[i]), eb = f32_to_bf16_bits(x[i]);
            wrong += h[i].bits != eh;
            wrong += b[i].bits != eb;
            wrong += std::bit_cast<std::uint32_t>(rh[i]) != std::bit_cast<std::uint32_t>(f16_bits_to_f32(eh));
            wrong += std::bit_cast<std::uint32_t>(rb[i]) != std::bit_cast<std::uint32_t>(bf16_bits_to_f32(eb));
        }
        REQUIRE(wrong == 0);
    }
}

TEST_CASE("cpu simd: tanh is XLA's rational form: within 6 ulp of libm, odd, never past +-1, NaN kept") {
    // A sweep of every 61st float in [-12, 12] and every float from 1e-4 to 1e-3 in
    // magnitude (around the 0.0004 switch to tanh(x) = x), through the vector body
    // and the scalar tail (the same formula), against double-precision tanh. The
    // sweep (92 million values) is checked a chunk at a time: a few MB, not 15 GB.
    double worst = 0;
    float worst_x = 0;
    std::size_t past_one = 0, not_odd = 0, differ = 0, seen = 0;
    std::vector<float> x, y;
    const auto check = [&] {  // x holds pairs (v, -v), then maybe one more value
        y.resize(x.size());
        REQUIRE(cpu::simd::unary(op::tanh, x.data(), y.data(), static_cast<std::int64_t>(x.size())));
        for (std::size_t i = 0; i < x.size(); ++i) {
            const double t = std::tanh(static_cast<double>(x[i]));
            const float tf = static_cast<float>(t);
            const double ulp = std::nextafter(std::abs(tf), 2.0f) - std::abs(tf);
            if (std::abs(y[i] - t) / ulp > worst) worst = std::abs(y[i] - t) / ulp, worst_x = x[i];
            past_one += std::abs(y[i]) > 1.0f;
            if (i % 2 == 1) not_odd += y[i] != -y[i - 1];
            // The vector body and the scalar tail agree: every 97th value again, alone.
            if ((seen + i) % 97 == 0) differ += cpu::simd::tanh(x[i]) != y[i];
        }
        seen += x.size();
        x.clear();
    };
    for (std::uint32_t bits = 0; bits <= std::bit_cast<std::uint32_t>(12.0f); ++bits) {
        const float v = std::bit_cast<float>(bits);
        if (bits % 61 == 0 || (v >= 1e-4f && v <= 1e-3f)) x.push_back(v), x.push_back(-v);
        if (x.size() >= (1u << 20)) check();
    }
    for (float v : {0.0f, -0.0f, 0.0004f, 7.9f, 7.99881172180175781f, 8.0f, 9.0f, 1e30f}) x.push_back(v), x.push_back(-v);
    x.push_back(1.5f);  // a scalar tail
    check();
    INFO("worst error: " << worst << " ulp, at x = " << worst_x << ", over " << seen << " values");
    CHECK(seen > 50'000'000);
    CHECK(worst <= 6);
    CHECK(past_one == 0);
    CHECK(not_odd == 0);
    CHECK(differ == 0);
    // Infinities saturate; NaN stays NaN; tiny values are themselves.
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> special = {inf, -inf, nan, 1e-30f, -3e-4f, 1.0f, 2.0f, 3.0f, inf, nan}, out(special.size());
    REQUIRE(cpu::simd::unary(op::tanh, special.data(), out.data(), static_cast<std::int64_t>(special.size())));
    CHECK(out[0] == 1.0f);
    CHECK(out[1] == -1.0f);
    CHECK(std::isnan(out[2]));
    CHECK(out[3] == 1e-30f);
    CHECK(out[4] == -3e-4f);
    CHECK(out[8] == 1.0f);
    CHECK(std::isnan(out[9]));
}

TEST_CASE("cpu simd: pred bytes widen to 1.0f or 0.0f, and fill spreads a value, on every instruction set") {
    // Every byte value (a pred is 0 or 1, but the kernel must not care), at an
    // odd offset and a length that leaves a scalar tail for each vector width.
    std::vector<std::uint8_t> bytes(256 + 37);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>((i * 151) % 256);
    const auto n = static_cast<std::int64_t>(bytes.size()) - 1;
    std::vector<void (*)(const std::uint8_t*, float*, std::int64_t)> sets{cpu::simd::widen_pred};
#ifdef SCRIBE_X86
    namespace d = cpu::simd::detail;
    if (d::has_avx2_fma_f16c()) sets.push_back(d::widen_pred_avx2);
    if (d::has_avx512f()) sets.push_back(d::widen_pred_avx512);
#endif
    for (auto widen : sets) {
        std::vector<float> out(static_cast<std::size_t>(n) + 1, -7.0f);
        widen(bytes.data() + 1, out.data(), n);
        std::size_t wrong = 0;
        for (std::int64_t i = 0; i < n; ++i) wrong += out[static_cast<std::size_t>(i)] != (bytes[static_cast<std::size_t>(i + 1)] ? 1.0f : 0.0f);
        CHECK(wrong == 0);
        CHECK(out.back() == -7.0f);  // nothing past n
    }
    std::vector<float> y(53, 0.0f);
    cpu::simd::fill(y.data() + 1, 2.5f, 51);
    CHECK(y.front() == 0.0f);
    CHECK(y.back() == 0.0f);
    CHECK(std::count(y.begin(), y.end(), 2.5f) == 51);
}

TEST_CASE("cpu: the thread pool splits work and results do not depend on the thread count") {
    cpu::thread_pool pool(3);
    CHECK(pool.size() == 3);
    std::vector<int> hits(1000, 0);
    std::vector<std::int64_t> begins(3);
    pool.run([&](unsigned t) {  // Catch's assertions are not thread-safe: check afterwards
        const auto [b, e] = pool.part(1000, t, 64);
        begins[t] = b;
        for (auto i = b; i < e; ++i) ++hits[static_cast<std::size_t>(i)];
    });
    for (auto b : begins) CHECK(b % 64 == 0);
    CHECK(std::count(hits.begin(), hits.end(), 1) == 1000);
    CHECK_THROWS_WITH(pool.run([](unsigned t) {
        if (t == 2) throw error("worker failed");
    }), Catch::Contains("worker failed"));

    graph g("mm");
    g.bind(hidden(300), vocab(500), tokens(37));
    auto h = g.parameter(f32[hidden, tokens], "h");
    auto w = g.parameter(f32[hidden, vocab], "w");
    auto v = g.parameter(f32[hidden], "v");
    g.outputs(dot<hidden>(w, h), dot<hidden>(w, v));
    std::vector<float> hv(300 * 37), wv(300 * 500), vv(300);
    for (std::size_t i = 0; i < hv.size(); ++i) hv[i] = std::sin(0.01f * static_cast<float>(i));
    for (std::size_t i = 0; i < wv.size(); ++i) wv[i] = std::cos(0.003f * static_cast<float>(i));
    for (std::size_t i = 0; i < vv.size(); ++i) vv[i] = 0.5f - 0.001f * static_cast<float>(i);
    auto run = [&](unsigned threads) {
        return cpu::executor(g, {.threads = threads})({{"h", cpu::array::borrow(dtype::f32, {{"", 300}, {"", 37}}, hv.data(), hv.size() * 4)},
                                                       {"w", cpu::array::borrow(dtype::f32, {{"", 300}, {"", 500}}, wv.data(), wv.size() * 4)},
                                                       {"v", cpu::array::borrow(dtype::f32, {{"", 300}}, vv.data(), vv.size() * 4)}});
    };
    // [vocab, tokens] is taller than wide: the threads split its rows.
    const auto one = run(1), two = run(2), two_again = run(2), three = run(3);
    for (std::size_t k = 0; k < 2; ++k) {
        REQUIRE(one[k].bytes() == two[k].bytes());
        CHECK(std::memcmp(one[k].data(), two[k].data(), one[k].bytes()) == 0);
        CHECK(std::memcmp(two[k].data(), two_again[k].data(), two[k].bytes()) == 0);
        CHECK(std::memcmp(one[k].data(), three[k].data(), one[k].bytes()) == 0);
    }
}

TEST_CASE("cpu: gelu(x * w + b) runs fused, with no intermediate buffers, as the unfused ops compute it") {
    for (const bool bf16_case : {false, true}) {
        graph g("gelu");
        g.bind(hidden(64), tokens(33));
        auto run_case = [&](auto t) {
            auto x = g.parameter(t[hidden, tokens], "x");
            auto w = g.parameter(t[hidden, tokens], "w");
            auto b = g.parameter(t[hidden, tokens], "b");
            auto y = x * w + b;
            g.outputs(y * 0.5 * (tanh((y + y * y * y * 0.044715) * 0.7978845608) + 1.0));
        };
        if (bf16_case) run_case(bf16); else run_case(f32);
        const auto type = bf16_case ? dtype::bf16 : dtype::f32;
        const auto es = static_cast<std::size_t>(info(type).bytes);
        std::vector<unsigned char> xs(64 * 33 * es), ws(xs.size()), bs(xs.size());
        for (std::size_t i = 0; i < 64 * 33; ++i) {
            store_as(type, std::sin(0.1 * static_cast<double>(i)), xs.data() + i * es);
            store_as(type, std::cos(0.07 * static_cast<double>(i)), ws.data() + i * es);
            store_as(type, 0.25 - 0.001 * static_cast<double>(i), bs.data() + i * es);
        }
        const shape s{{"", 64}, {"", 33}};
        const std::vector<cpu::array> in = {cpu::array::borrow(type, s, xs.data(), xs.size()),
                                            cpu::array::borrow(type, s, ws.data(), ws.size()),
                                            cpu::array::borrow(type, s, bs.data(), bs.size())};
        cpu::executor fused(g), plain(g, {.fuse = false});
        REQUIRE(fused.fusion().groups.size() == 1);
        const auto& members = fused.fusion().groups[0].members;
        CHECK(members.size() >= 10);  // the multiplies, adds and tanh; the scalars are read in place
        CHECK(fused.fusion_report().find("intermediate buffers avoided") != std::string::npos);
        CHECK(fused.fusion_report().find("read in place: broadcast") != std::string::npos);
        CHECK(plain.fusion().groups.empty());
        const auto a = fused(std::span<const cpu::array>(in)), b = plain(std::span<const cpu::array>(in));
        REQUIRE(a[0].bytes() == b[0].bytes());
        // Both take the same f32 tanh (XLA's rational form); each 16-bit
        // intermediate is rounded as the unfused ops round it.
        const double tol = bf16_case ? 1.0 / 128 : 2e-6;  // 2e-6: about 16 ulp
        double worst = 0;
        for (std::int64_t i = 0; i < 64 * 33; ++i) {
            const double u = load_as_double(type, a[0].data() + i * static_cast<std::int64_t>(es));
            const double v = load_as_double(type, b[0].data() + i * static_cast<std::int64_t>(es));
            worst = std::max(worst, std::abs(u - v) / (std::abs(v) + 1e-3));
        }
        CHECK(worst <= tol);
        // Fused: the output and the scalar constants are the only buffers.
        CHECK(fused.stats().peak_bytes < a[0].bytes() + 64);
        CHECK(plain.stats().peak_bytes >= 2 * a[0].bytes());
    }
}

TEST_CASE("cpu: intermediates are freed after their last reader") {
    graph g("chain");
    g.bind(hidden(1000));
    auto x = g.parameter(f32[hidden], "x");
    auto y = x;
    for (int i = 0; i < 20; ++i) y = reduce_sum<hidden>(broadcast_to(exp(reduce_max<hidden>(y)), y)) + y;  // no fusion across reduces
    g.outputs(y);
    std::vector<float> xs(1000, 0.001f);
    cpu::executor run(g, {.fuse = false});
    (void)run({cpu::array::borrow(dtype::f32, {{"", 1000}}, xs.data(), 4000)});
    CHECK(run.stats().buffers > 40);
    CHECK(run.stats().peak_bytes < 4 * 4000);  // a few vectors live at a time, not 20+
}

TEST_CASE("cpu simd: sgemm reads a transposed A (a weight gradient's x^T) as the same matrix stored by rows") {
    const std::int64_t m = 29, n = 50, k = 300;  // m not a multiple of any MR, k past one kc block
    std::vector<float> rows(static_cast<std::size_t>(m * k)), cols(rows.size()), bm(static_cast<std::size_t>(k * n));
    std::vector<half> cols_h(rows.size()), rows_h(rows.size());
    for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = 0; j < k; ++j) {
            const float v = std::sin(0.37f * static_cast<float>(i * k + j));
            rows[static_cast<std::size_t>(i * k + j)] = cols[static_cast<std::size_t>(j * m + i)] = v;
            rows_h[static_cast<std::size_t>(i * k + j)].bits = cols_h[static_cast<std::size_t>(j * m + i)].bits = f32_to_f16_bits(v);
        }
    for (std::size_t i = 0; i < bm.size(); ++i) bm[i] = std::cos(0.21f * static_cast<float>(i));
    const cpu::simd::matrix_view b{bm.data(), n, 1};
    std::vector<float> want(static_cast<std::size_t>(m * n)), got(want.size());
    cpu::simd::sgemm(m, n, k, cpu::simd::matrix_view{rows.data(), k, 1}, b, want.data(), n);
    cpu::simd::sgemm(m, n, k, cpu::simd::matrix_view{cols.data(), 1, m}, b, got.data(), n);
    CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);  // same values, same order
    cpu::simd::sgemm(m, n, k, cpu::simd::basic_matrix_view<half>{rows_h.data(), k, 1}, b, want.data(), n);
    cpu::simd::sgemm(m, n, k, cpu::simd::basic_matrix_view<half>{cols_h.data(), 1, m}, b, got.data(), n);
    CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
}

TEST_CASE("cpu simd: sgemm widens f16 and bf16 operands while packing") {
    const std::int64_t m = 19, n = 50, k = 33;
    std::vector<half> ah(static_cast<std::size_t>(m * k));
    std::vector<bfloat16> bb(static_cast<std::size_t>(k * n));
    std::vector<float> af(ah.size()), bf(bb.size());
    for (std::size_t i = 0; i < ah.size(); ++i) {
        ah[i].bits = f32_to_f16_bits(std::sin(0.2f * static_cast<float>(i)));
        af[i] = f16_bits_to_f32(ah[i].bits);
    }
    for (std::size_t i = 0; i < bb.size(); ++i) {
        bb[i].bits = f32_to_bf16_bits(std::cos(0.3f * static_cast<float>(i)));
        bf[i] = bf16_bits_to_f32(bb[i].bits);
    }
    std::vector<float> c(static_cast<std::size_t>(m * n)), want(c.size());
    cpu::simd::sgemm(m, n, k, cpu::simd::basic_matrix_view<half>{ah.data(), k, 1},
                     cpu::simd::basic_matrix_view<bfloat16>{bb.data(), n, 1}, c.data(), n);
    cpu::simd::sgemm(m, n, k, cpu::simd::matrix_view{af.data(), k, 1}, cpu::simd::matrix_view{bf.data(), n, 1},
                     want.data(), n);
    CHECK(std::memcmp(c.data(), want.data(), c.size() * sizeof(float)) == 0);  // same values, same order
}

SCRIBE_DIM(rows);
SCRIBE_DIM(keys);
SCRIBE_DIM(a);
SCRIBE_DIM(b);
SCRIBE_DIM(c);
SCRIBE_DIM(heads);
SCRIBE_DIM(head_dim);

namespace {
std::vector<float> wave(std::size_t n, double f) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(std::sin(f * static_cast<double>(i) + 0.3));
    return v;
}
}  // namespace

TEST_CASE("cpu: a bound weight is packed once and gives the same products; run() then takes the rest") {
    graph g("bound");
    g.bind(rows(37), hidden(70), vocab(101));
    auto x = g.parameter(f32[rows, hidden], "x");
    auto w = g.parameter(f32[hidden, vocab], "w");
    auto b = g.parameter(f32[vocab], "b");
    auto y = dot<hidden>(x, w);
    g.outputs(y + broadcast_to(b, y));
    const auto xs = wave(37 * 70, 0.1), ws = wave(70 * 101, 0.07), bs = wave(101, 0.5);
    const auto X = cpu::array::borrow(dtype::f32, {{"", 37}, {"", 70}}, xs.data(), xs.size() * 4);
    const auto W = cpu::array::borrow(dtype::f32, {{"", 70}, {"", 101}}, ws.data(), ws.size() * 4);
    const auto B = cpu::array::borrow(dtype::f32, {{"", 101}}, bs.data(), bs.size() * 4);
    for (unsigned threads : {1u, 2u}) {
        cpu::executor plain(g, {.threads = threads}), bound(g, {.threads = threads});
        bound.bind(w, W);
        bound.bind("b", B);
        CHECK(bound.unbound_parameters() == 1);
        const auto want = plain({{"x", X}, {"w", W}, {"b", B}});
        const auto got = bound({X});
        CHECK(bound.stats().packed_bytes >= 70 * 101 * 4);  // the packed copy of w
        CHECK(plain.stats().packed_bytes == 0);
        REQUIRE(got[0].bytes() == want[0].bytes());
        CHECK(std::memcmp(got[0].data(), want[0].data(), want[0].bytes()) == 0);  // same kernel, same order
        CHECK_THROWS_WITH(bound({X, W, B}), Catch::Contains("takes 1 unbound inputs") && Catch::Contains("got 3"));
    }
    cpu::executor e(g);
    CHECK_THROWS_WITH(e.bind(w, X), Catch::Contains("parameter `w` is f32[hidden=70, vocab=101]") &&
                                        Catch::Contains("bound value is f32[37, 70]"));
    CHECK_THROWS_WITH(e.bind(7, W), Catch::Contains("has no parameter 7"));
}

TEST_CASE("cpu: a broadcast that is materialised (an output, an integer table) repeats its source's elements") {
    // New leading and middle dimensions (whole rows of the source copied), a new
    // innermost one (each element repeated), in f32 and u32.
    graph g("broadcasts");
    g.bind(a(3), b(4), c(5));
    auto x = g.parameter(f32[a, c], "x");
    auto t = g.parameter(u32[c], "t");
    auto like = g.parameter(f32[a, b, c], "like");
    auto like_t = g.parameter(u32[b, a, c], "like_t");
    auto inner = g.parameter(f32[a, c, b], "inner");
    g.outputs(broadcast_to(x, like), broadcast_to(t, like_t), broadcast_to(x, inner));
    std::vector<float> xs(15);
    std::vector<std::uint32_t> ts(5);
    for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = 0.5f * static_cast<float>(i) - 3.0f;
    for (std::size_t i = 0; i < ts.size(); ++i) ts[i] = 0x9e3779b9u * static_cast<std::uint32_t>(i + 1);
    const auto X = cpu::array::borrow(dtype::f32, {{"", 3}, {"", 5}}, xs.data(), 60);
    const auto T = cpu::array::borrow(dtype::u32, {{"", 5}}, ts.data(), 20);
    const std::vector<float> zeros(60);  // the others give only their shapes
    const auto L = cpu::array::borrow(dtype::f32, {{"", 3}, {"", 4}, {"", 5}}, zeros.data(), 240);
    const auto LT = cpu::array::borrow(dtype::u32, {{"", 4}, {"", 3}, {"", 5}}, zeros.data(), 240);
    const auto I = cpu::array::borrow(dtype::f32, {{"", 3}, {"", 5}, {"", 4}}, zeros.data(), 240);
    const auto out = cpu::executor(g)({{"x", X}, {"t", T}, {"like", L}, {"like_t", LT}, {"inner", I}});
    const auto* r0 = reinterpret_cast<const float*>(out[0].data());
    const auto* r1 = reinterpret_cast<const std::uint32_t*>(out[1].data());
    const auto* r2 = reinterpret_cast<const float*>(out[2].data());
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 4; ++j)
            for (std::size_t k = 0; k < 5; ++k) {
                CHECK(r0[(i * 4 + j) * 5 + k] == xs[i * 5 + k]);
                CHECK(r1[(j * 3 + i) * 5 + k] == ts[k]);
                CHECK(r2[(i * 5 + k) * 4 + j] == xs[i * 5 + k]);
            }
}

TEST_CASE("cpu: integer element-wise passes split over the threads match a plain loop") {
    // 200003 elements: split over 2 threads, the pieces ending off a 64-element edge.
    graph g("integer_passes");
    g.bind(tokens(200003));
    auto x = g.parameter(u32[tokens], "x");
    auto y = g.parameter(u32[tokens], "y");
    const auto amount = bitwise_and(y, 31);
    g.outputs(x + y, x * y, x - y, bitwise_xor(x, y), shift_left(x, amount), shift_right_logical(x, amount), bitwise_and(x, y));
    std::vector<std::uint32_t> xs(200003), ys(200003);
    for (std::size_t i = 0; i < xs.size(); ++i) {
        xs[i] = static_cast<std::uint32_t>(i) * 2654435761u;
        ys[i] = static_cast<std::uint32_t>(i) * 40503u + 7u;
    }
    const auto X = cpu::array::borrow(dtype::u32, {{"", 200003}}, xs.data(), xs.size() * 4);
    const auto Y = cpu::array::borrow(dtype::u32, {{"", 200003}}, ys.data(), ys.size() * 4);
    for (unsigned threads : {1u, 2u}) {
        const auto out = cpu::executor(g, {.threads = threads})({{"x", X}, {"y", Y}});
        auto at = [&](std::size_t k, std::size_t i) { return reinterpret_cast<const std::uint32_t*>(out[k].data())[i]; };
        std::size_t wrong = 0;
        for (std::size_t i = 0; i < xs.size(); ++i) {
            const auto a = xs[i], b = ys[i];
            wrong += at(0, i) != a + b;
            wrong += at(1, i) != a * b;
            wrong += at(2, i) != a - b;
            wrong += at(3, i) != (a ^ b);
            wrong += at(4, i) != a << (b & 31u);
            wrong += at(5, i) != a >> (b & 31u);
            wrong += at(6, i) != (a & b);
        }
        CAPTURE(threads);
        CHECK(wrong == 0);
    }
}

TEST_CASE("cpu: a softmax runs as one row group (no [tokens, keys] value but its result) and matches a plain loop") {
    graph g("softmax");
    g.bind(tokens(9), keys(300));
    auto x = g.parameter(f32[tokens, keys], "x");
    g.outputs(softmax<keys>(x));
    const auto xs = wave(9 * 300, 0.37);
    const auto X = cpu::array::borrow(dtype::f32, {{"", 9}, {"", 300}}, xs.data(), xs.size() * 4);
    cpu::executor fused(g), plain(g, {.fuse = false});
    const auto a = fused({X});
    (void)plain({X});
    INFO(fused.fusion_report());
    REQUIRE(fused.fusion().groups.size() == 1);  // max, x - max, exp, the sum, the division
    CHECK(fused.fusion().groups[0].row == 300);
    CHECK(fused.fusion_report().find("rows of 300") != std::string::npos);
    CHECK(fused.stats().peak_bytes == a[0].bytes());  // the result only: no broadcasts, no exp(x - max)
    CHECK(fused.stats().peak_bytes < plain.stats().peak_bytes);
    const auto p = a[0].values<float>();
    for (std::size_t t = 0; t < 9; ++t) {
        double m = -1e30, s = 0;
        for (std::size_t k = 0; k < 300; ++k) m = std::max(m, double(xs[t * 300 + k]));
        for (std::size_t k = 0; k < 300; ++k) s += std::exp(double(xs[t * 300 + k]) - m);
        for (std::size_t k = 0; k < 300; ++k)
            CHECK(p[t * 300 + k] == Approx(std::exp(double(xs[t * 300 + k]) - m) / s).epsilon(1e-5));
    }
}

TEST_CASE("cpu: float reductions over leading, middle and trailing axes match a plain loop") {
    graph g("reductions");
    g.bind(a(5), b(67), c(33));
    auto x = g.parameter(f32[a, b, c], "x");
    g.outputs(reduce_sum<a>(x), reduce_max<b>(x), reduce_min<c>(x), reduce_sum<b, c>(x));
    const auto xs = wave(5 * 67 * 33, 0.013);
    const auto out = cpu::executor(g)({cpu::array::borrow(dtype::f32, {{"", 5}, {"", 67}, {"", 33}}, xs.data(), xs.size() * 4)});
    auto at = [&](std::size_t i, std::size_t j, std::size_t k) { return double(xs[(i * 67 + j) * 33 + k]); };
    for (std::size_t j = 0; j < 67; ++j)
        for (std::size_t k = 0; k < 33; ++k) {
            double s = 0;
            for (std::size_t i = 0; i < 5; ++i) s += at(i, j, k);
            CHECK(out[0].values<float>()[j * 33 + k] == Approx(s).margin(1e-5));
        }
    for (std::size_t i = 0; i < 5; ++i) {
        double total = 0;
        for (std::size_t k = 0; k < 33; ++k) {
            double m = -1e30;
            for (std::size_t j = 0; j < 67; ++j) m = std::max(m, at(i, j, k));
            CHECK(out[1].values<float>()[i * 33 + k] == float(m));
        }
        for (std::size_t j = 0; j < 67; ++j) {
            double m = 1e30;
            for (std::size_t k = 0; k < 33; ++k) {
                m = std::min(m, at(i, j, k));
                total += at(i, j, k);
            }
            CHECK(out[2].values<float>()[i * 67 + j] == float(m));
        }
        CHECK(out[3].values<float>()[i] == Approx(total).margin(1e-3));
    }
}

TEST_CASE("cpu: f16 and bf16 reductions over rows and columns longer than a widened piece match a plain loop") {
    // Rows of 20000 and columns of 40000 elements: more than the 16384 that are
    // widened to f32 at a time, so results combine pieces (and one reduction
    // splits its columns over the threads). A NaN in a row's second piece stays.
    // And 3001 short rows of 37 (softmax's over keys), widened many rows at a
    // time: the pieces end mid-way through the rows' list, one row holds a NaN.
    auto check = [](auto element, dtype type) {
        INFO(name(type));
        graph g("long_reductions");
        g.bind(a(3), b(20000), rows(5), c(40000), tokens(3001), keys(37));
        auto x = g.parameter(element[a, b], "x");
        auto y = g.parameter(element[rows, c], "y");
        auto z = g.parameter(element[tokens, keys], "z");
        g.outputs(reduce_sum<b>(x), reduce_max<b>(x), reduce_min<b>(x), reduce_sum<rows>(y), reduce_max<rows>(y),
                  reduce_sum<keys>(z), reduce_max<keys>(z));
        auto xs = wave(3 * 20000, 0.0007), ys = wave(5 * 40000, 0.011), zs = wave(3001 * 37, 0.013);
        xs[20000 + 17000] = std::numeric_limits<float>::quiet_NaN();  // row 1, second piece
        zs[1234 * 37 + 5] = std::numeric_limits<float>::quiet_NaN();
        auto bits = [type](float v) { return type == dtype::f16 ? f32_to_f16_bits(v) : f32_to_bf16_bits(v); };
        auto value = [type](std::uint16_t h) { return double(type == dtype::f16 ? f16_bits_to_f32(h) : bf16_bits_to_f32(h)); };
        std::vector<std::uint16_t> xh(xs.size()), yh(ys.size()), zh(zs.size());
        for (std::size_t i = 0; i < xs.size(); ++i) xh[i] = bits(xs[i]);
        for (std::size_t i = 0; i < ys.size(); ++i) yh[i] = bits(ys[i]);
        for (std::size_t i = 0; i < zs.size(); ++i) zh[i] = bits(zs[i]);
        const std::vector<cpu::array> in = {cpu::array::borrow(type, {{"", 3}, {"", 20000}}, xh.data(), xh.size() * 2),
                                            cpu::array::borrow(type, {{"", 5}, {"", 40000}}, yh.data(), yh.size() * 2),
                                            cpu::array::borrow(type, {{"", 3001}, {"", 37}}, zh.data(), zh.size() * 2)};
        const auto one = cpu::executor(g, {.threads = 1})(std::span<const cpu::array>(in));
        const auto two = cpu::executor(g, {.threads = 2})(std::span<const cpu::array>(in));
        for (std::size_t k = 0; k < one.size(); ++k) {
            REQUIRE(one[k].bytes() == two[k].bytes());
            CHECK(std::memcmp(one[k].data(), two[k].data(), one[k].bytes()) == 0);  // one order at any thread count
        }
        auto got = [&](std::size_t out, std::size_t i) { return value(reinterpret_cast<const std::uint16_t*>(one[out].data())[i]); };
        for (std::size_t r = 0; r < 3; ++r) {
            double s = 0, hi = -1e30, lo = 1e30;
            for (std::size_t j = 0; j < 20000; ++j) {
                const auto v = value(xh[r * 20000 + j]);
                s += v, hi = std::max(hi, v), lo = std::min(lo, v);
            }
            if (r == 1) {
                CHECK(std::isnan(got(0, r)));
                CHECK(std::isnan(got(1, r)));
                CHECK(std::isnan(got(2, r)));
                continue;
            }
            CHECK(got(0, r) == Approx(s).epsilon(1.0 / 128).margin(0.05));
            CHECK(got(1, r) == hi);
            CHECK(got(2, r) == lo);
        }
        for (std::size_t j = 0; j < 40000; ++j) {
            double s = 0, hi = -1e30;
            for (std::size_t r = 0; r < 5; ++r) {
                const auto v = value(yh[r * 40000 + j]);
                s += v, hi = std::max(hi, v);
            }
            CHECK(got(3, j) == Approx(s).epsilon(1.0 / 128).margin(1e-2));
            CHECK(got(4, j) == hi);
        }
        for (std::size_t r = 0; r < 3001; ++r) {
            double s = 0, hi = -1e30;
            for (std::size_t j = 0; j < 37; ++j) {
                const auto v = value(zh[r * 37 + j]);
                s += v, hi = std::max(hi, v);
            }
            if (r == 1234) {
                CHECK(std::isnan(got(5, r)));
                CHECK(std::isnan(got(6, r)));
                continue;
            }
            CHECK(got(5, r) == Approx(s).epsilon(1.0 / 128).margin(1e-2));
            CHECK(got(6, r) == hi);
        }
    };
    check(f16, dtype::f16);
    check(bf16, dtype::bf16);
}

TEST_CASE("cpu: a dot contracting dimensions that are not adjacent in memory matches a plain loop") {
    // The left operand is gathered into [tokens, heads x head_dim] first: on one thread
    // when small, its rows split over the pool when large (over 256 KiB: 12 x 192 x 64).
    struct sizes {
        std::int64_t H, T, D, O;
    };
    for (const auto [H, T, D, O] : {sizes{3, 10, 8, 50}, sizes{12, 192, 64, 40}}) {
        INFO("heads " << H << ", tokens " << T);
        graph g("merge_heads");
        g.bind(heads(H), tokens(T), head_dim(D), hidden(O));
        auto ctx = g.parameter(f32[heads, tokens, head_dim], "ctx");
        auto w = g.parameter(f32[heads, head_dim, hidden], "w");
        g.outputs(dot<heads, head_dim>(ctx, w), dot<heads, head_dim>(convert<f16>(ctx), convert<f16>(w)));  // [tokens, hidden]
        const auto cs = wave(static_cast<std::size_t>(H * T * D), 0.2), ws = wave(static_cast<std::size_t>(H * D * O), 0.05);
        for (unsigned threads : {1u, 2u, 3u}) {
            INFO("threads " << threads);
            const auto out = cpu::executor(g, {.threads = threads})(
                {cpu::array::borrow(dtype::f32, {{"", H}, {"", T}, {"", D}}, cs.data(), cs.size() * 4),
                 cpu::array::borrow(dtype::f32, {{"", H}, {"", D}, {"", O}}, ws.data(), ws.size() * 4)});
            for (std::int64_t t = 0; t < T; ++t)
                for (std::int64_t o = 0; o < O; ++o) {
                    double s = 0, s16 = 0;
                    for (std::int64_t h = 0; h < H; ++h)
                        for (std::int64_t d = 0; d < D; ++d) {
                            const float x = cs[static_cast<std::size_t>((h * T + t) * D + d)], y = ws[static_cast<std::size_t>((h * D + d) * O + o)];
                            s += double(x) * double(y);
                            s16 += double(f16_bits_to_f32(f32_to_f16_bits(x))) * f16_bits_to_f32(f32_to_f16_bits(y));
                        }
                    const auto i = static_cast<std::size_t>(t * O + o);
                    CHECK(out[0].values<float>()[i] == Approx(s).margin(1e-5));
                    CHECK(f16_bits_to_f32(out[1].values<half>()[i].bits) == Approx(s16).epsilon(1.0 / 2048).margin(1e-3));
                }
        }
    }
}

TEST_CASE("cpu: batched 16-bit products (attention's shape) are rounded the same whether batches share a thread or not") {
    // [heads, tokens, head_dim] . [heads, head_dim, keys] -> [heads, tokens, keys] in bf16 and f16.
    // With 1 thread, and with as many batches as threads or more, each batch is rounded from a
    // block of its thread as soon as it is computed; with fewer batches than threads (2 on 3),
    // all batches go through one f32 block, rounded at the end over the pool. Every way gives
    // the same bits, each value within a 16-bit rounding of the exact sum.
    for (const std::int64_t H : {5, 2}) {
        INFO("batches " << H);
        graph g("batched");
        g.bind(heads(H), tokens(40), head_dim(70), keys(36));
        auto q = g.parameter(f32[heads, tokens, head_dim], "q");
        auto k = g.parameter(f32[heads, head_dim, keys], "k");
        g.outputs(dot<head_dim, batched<heads>>(convert<bf16>(q), convert<bf16>(k)),
                  dot<head_dim, batched<heads>>(convert<f16>(q), convert<f16>(k)));
        const auto qs = wave(static_cast<std::size_t>(H * 40 * 70), 0.3), ks = wave(static_cast<std::size_t>(H * 70 * 36), 0.11);
        std::vector<std::vector<std::uint16_t>> first(2);
        for (unsigned threads : {1u, 2u, 3u}) {
            INFO("threads " << threads);
            const auto out = cpu::executor(g, {.threads = threads})(
                {{"q", cpu::array::borrow(dtype::f32, {{"", H}, {"", 40}, {"", 70}}, qs.data(), qs.size() * 4)},
                 {"k", cpu::array::borrow(dtype::f32, {{"", H}, {"", 70}, {"", 36}}, ks.data(), ks.size() * 4)}});
            for (std::size_t o = 0; o < 2; ++o) {
                const auto* bits = reinterpret_cast<const std::uint16_t*>(out[o].data());
                const std::vector<std::uint16_t> got(bits, bits + H * 40 * 36);
                if (threads == 1) first[o] = got;
                else REQUIRE(got == first[o]);
            }
            for (std::int64_t h = 0; h < H; ++h)
                for (std::int64_t t = 0; t < 40; ++t)
                    for (std::int64_t n = 0; n < 36; ++n) {
                        double s16[2] = {0, 0};
                        for (std::int64_t d = 0; d < 70; ++d) {
                            const float x = qs[static_cast<std::size_t>((h * 40 + t) * 70 + d)], y = ks[static_cast<std::size_t>((h * 70 + d) * 36 + n)];
                            s16[0] += double(bf16_bits_to_f32(f32_to_bf16_bits(x))) * bf16_bits_to_f32(f32_to_bf16_bits(y));
                            s16[1] += double(f16_bits_to_f32(f32_to_f16_bits(x))) * f16_bits_to_f32(f32_to_f16_bits(y));
                        }
                        const auto i = static_cast<std::size_t>((h * 40 + t) * 36 + n);
                        CHECK(bf16_bits_to_f32(out[0].values<bfloat16>()[i].bits) == Approx(s16[0]).epsilon(1.0 / 256).margin(1e-3));
                        CHECK(f16_bits_to_f32(out[1].values<half>()[i].bits) == Approx(s16[1]).epsilon(1.0 / 2048).margin(1e-3));
                    }
        }
    }
}

TEST_CASE("cpu: grouped-query attention's decode products (2-4 query rows per key/value head) match a plain loop") {
    // scores [heads, a, keys] = q [heads, a, head_dim] . k [keys, heads, head_dim]; then
    // ctx [heads, a, head_dim] = p [heads, a, keys] . v [keys, heads, head_dim]: a few rows
    // against a matrix read with a stride (the KV cache), one GEMV per row.
    // head_dim 72: bf16 pairs' vector loop (32 a step) and a scalar tail; head_dim
    // 64 (a multiple of 16): the kernels that read the cache in memory order
    // (simd::batched_dots, batched_rows), with 1 to 8 rows per head.
    for (const std::int64_t D : {72, 64})
    for (const std::int64_t G : {1, 2, 3, 4, 6, 8}) {
        INFO("head_dim " << D << ", rows per head " << G);
        graph g("gqa");
        g.bind(heads(3), a(G), keys(37), head_dim(D));
        auto q = g.parameter(f32[heads, a, head_dim], "q");
        auto k = g.parameter(f32[keys, heads, head_dim], "k");
        auto p = g.parameter(f32[heads, a, keys], "p");
        g.outputs(dot<head_dim, batched<heads>>(q, k), dot<keys, batched<heads>>(p, k),
                  dot<head_dim, batched<heads>>(convert<bf16>(q), convert<bf16>(k)));
        const auto qs = wave(static_cast<std::size_t>(3 * G * D), 0.3), ks = wave(37 * 3 * D, 0.11),
                   ps = wave(static_cast<std::size_t>(3 * G * 37), 0.23);
        for (unsigned threads : {1u, 2u}) {
            const auto out = cpu::executor(g, {.threads = threads})(
                {{"q", cpu::array::borrow(dtype::f32, {{"", 3}, {"", G}, {"", D}}, qs.data(), qs.size() * 4)},
                 {"k", cpu::array::borrow(dtype::f32, {{"", 37}, {"", 3}, {"", D}}, ks.data(), ks.size() * 4)},
                 {"p", cpu::array::borrow(dtype::f32, {{"", 3}, {"", G}, {"", 37}}, ps.data(), ps.size() * 4)}});
            const auto bf = [](float v) { return static_cast<double>(bf16_bits_to_f32(f32_to_bf16_bits(v))); };
            for (std::int64_t h = 0; h < 3; ++h)
                for (std::int64_t r = 0; r < G; ++r) {
                    for (std::int64_t n = 0; n < 37; ++n) {
                        double s = 0, sb = 0;
                        for (std::int64_t d = 0; d < D; ++d) {
                            const auto qv = qs[static_cast<std::size_t>((h * G + r) * D + d)], kv = ks[static_cast<std::size_t>((n * 3 + h) * D + d)];
                            s += double(qv) * kv;
                            sb += bf(qv) * bf(kv);
                        }
                        const auto i = static_cast<std::size_t>((h * G + r) * 37 + n);
                        CHECK(out[0].values<float>()[i] == Approx(s).margin(1e-5));
                        CHECK(bf16_bits_to_f32(out[2].values<bfloat16>()[i].bits) == Approx(sb).epsilon(1.0 / 128).margin(1e-2));
                    }
                    for (std::int64_t d = 0; d < D; ++d) {
                        double s = 0;
                        for (std::int64_t n = 0; n < 37; ++n)
                            s += double(ps[static_cast<std::size_t>((h * G + r) * 37 + n)]) * ks[static_cast<std::size_t>((n * 3 + h) * D + d)];
                        CHECK(out[1].values<float>()[static_cast<std::size_t>((h * G + r) * D + d)] == Approx(s).margin(1e-5));
                    }
                }
        }
    }
}

TEST_CASE("cpu: batched decode's and speculative verification's products (2-7 rows against a weight read once) match a plain loop") {
    // x [a, hidden] . W with W [hidden, vocab] (read along vocab) and with W [vocab, hidden]
    // (rows along hidden), f32 and bf16, odd sizes (tails of 16 lanes on both sides), the
    // weight given as a parameter (not packed): one pass over W for each group of up to
    // simd::gemv_multi_rows() rows (AVX-512's kernels take 4, AVX2's 6).
    for (const std::int64_t G : {2, 3, 4, 5, 6, 7}) {
        INFO("rows " << G);
        graph g("batched");
        g.bind(a(G), hidden(45), vocab(70));
        auto x = g.parameter(f32[a, hidden], "x");
        auto w = g.parameter(f32[hidden, vocab], "w");
        auto wt = g.parameter(f32[vocab, hidden], "wt");
        g.outputs(dot<hidden>(x, w), dot<hidden>(x, wt), dot<hidden>(convert<bf16>(x), convert<bf16>(w)),
                  dot<hidden>(convert<bf16>(x), convert<bf16>(wt)));
        const auto xs = wave(static_cast<std::size_t>(G * 45), 0.3), ws = wave(45 * 70, 0.11), wts = wave(70 * 45, 0.17);
        for (unsigned threads : {1u, 2u}) {
            INFO("threads " << threads);
            const auto out = cpu::executor(g, {.threads = threads})(
                {{"x", cpu::array::borrow(dtype::f32, {{"", G}, {"", 45}}, xs.data(), xs.size() * 4)},
                 {"w", cpu::array::borrow(dtype::f32, {{"", 45}, {"", 70}}, ws.data(), ws.size() * 4)},
                 {"wt", cpu::array::borrow(dtype::f32, {{"", 70}, {"", 45}}, wts.data(), wts.size() * 4)}});
            const auto bf = [](float v) { return static_cast<double>(bf16_bits_to_f32(f32_to_bf16_bits(v))); };
            for (std::int64_t r = 0; r < G; ++r)
                for (std::int64_t n = 0; n < 70; ++n) {
                    double s = 0, st = 0, sb = 0, stb = 0;
                    for (std::int64_t k = 0; k < 45; ++k) {
                        const auto xv = xs[static_cast<std::size_t>(r * 45 + k)], wv = ws[static_cast<std::size_t>(k * 70 + n)],
                                   wtv = wts[static_cast<std::size_t>(n * 45 + k)];
                        s += double(xv) * wv, st += double(xv) * wtv;
                        sb += bf(xv) * bf(wv), stb += bf(xv) * bf(wtv);
                    }
                    const auto i = static_cast<std::size_t>(r * 70 + n);
                    CHECK(out[0].values<float>()[i] == Approx(s).margin(1e-5));
                    CHECK(out[1].values<float>()[i] == Approx(st).margin(1e-5));
                    CHECK(bf16_bits_to_f32(out[2].values<bfloat16>()[i].bits) == Approx(sb).epsilon(1.0 / 128).margin(1e-2));
                    CHECK(bf16_bits_to_f32(out[3].values<bfloat16>()[i].bits) == Approx(stb).epsilon(1.0 / 128).margin(1e-2));
                }
        }
    }
}

TEST_CASE("cpu: f16 and bf16 products, bound or not, equal the double-precision product of the same values") {
    // Bound, the weight is packed once: bf16 pairs (AVX512_BF16), f16 split into
    // bf16 pairs (AMX), f32 panels elsewhere.
    auto check = [](auto element, dtype type, std::int64_t k, double epsilon) {
        INFO(name(type));
        graph g("dots16");
        g.bind(rows(37), hidden(k), vocab(101));
        auto x = g.parameter(element[rows, hidden], "x");
        auto w = g.parameter(element[hidden, vocab], "w");
        g.outputs(dot<hidden>(x, w));
        const auto K = static_cast<std::size_t>(k);
        const auto xs = wave(37 * K, 0.1), ws = wave(K * 101, 0.07);
        auto bits = [type](float v) { return type == dtype::f16 ? f32_to_f16_bits(v) : f32_to_bf16_bits(v); };
        auto value = [type](std::uint16_t h) { return double(type == dtype::f16 ? f16_bits_to_f32(h) : bf16_bits_to_f32(h)); };
        std::vector<std::uint16_t> xh(xs.size()), wh(ws.size());
        for (std::size_t i = 0; i < xs.size(); ++i) xh[i] = bits(1.3f * xs[i]);
        for (std::size_t i = 0; i < ws.size(); ++i) wh[i] = bits(0.77f * ws[i]);
        const auto X = cpu::array::borrow(type, {{"", 37}, {"", k}}, xh.data(), xh.size() * 2);
        const auto W = cpu::array::borrow(type, {{"", k}, {"", 101}}, wh.data(), wh.size() * 2);
        for (unsigned threads : {1u, 2u}) {
            cpu::executor plain(g, {.threads = threads}), bound(g, {.threads = threads});
            bound.bind(w, W);
            const auto a = plain({{"x", X}, {"w", W}}), b = bound({X});
            CHECK(bound.stats().packed_bytes > 0);
            for (std::size_t r = 0; r < 37; ++r)
                for (std::size_t n = 0; n < 101; ++n) {
                    double want = 0;
                    for (std::size_t j = 0; j < K; ++j) want += value(xh[r * K + j]) * value(wh[j * 101 + n]);
                    const auto i = r * 101 + n;
                    CHECK(value(reinterpret_cast<const std::uint16_t*>(a[0].data())[i]) == Approx(want).epsilon(epsilon).margin(1e-3));
                    CHECK(value(reinterpret_cast<const std::uint16_t*>(b[0].data())[i]) == Approx(want).epsilon(epsilon).margin(1e-3));
                }
        }
    };
    check(bf16, dtype::bf16, 70, 1.0 / 128);
    check(f16, dtype::f16, 300, 1.0 / 1024);
}

TEST_CASE("cpu: a one-row product x . W (decode) streams W's rows and matches a plain loop, f32 and bf16 weights") {
    graph g("decode");
    g.bind(tokens(1), hidden(96), vocab(333));
    auto x = g.parameter(f32[tokens, hidden], "x");
    auto w = g.parameter(f32[hidden, vocab], "w");
    auto wb = g.parameter(bf16[hidden, vocab], "wb");
    g.outputs(dot<hidden>(x, w), dot<hidden>(convert<bf16>(x), wb));
    const auto xs = wave(96, 0.3), ws = wave(96 * 333, 0.011);
    std::vector<bfloat16> wbs(ws.size());
    for (std::size_t i = 0; i < ws.size(); ++i) wbs[i].bits = f32_to_bf16_bits(ws[i]);
    for (unsigned threads : {1u, 2u}) {
        const auto out = cpu::executor(g, {.threads = threads})(
            {{"x", cpu::array::borrow(dtype::f32, {{"", 1}, {"", 96}}, xs.data(), xs.size() * 4)},
             {"w", cpu::array::borrow(dtype::f32, {{"", 96}, {"", 333}}, ws.data(), ws.size() * 4)},
             {"wb", cpu::array::borrow(dtype::bf16, {{"", 96}, {"", 333}}, wbs.data(), wbs.size() * 2)}});
        for (std::size_t n = 0; n < 333; ++n) {
            double s = 0, sb = 0;
            for (std::size_t k = 0; k < 96; ++k) {
                s += double(xs[k]) * double(ws[k * 333 + n]);
                sb += double(bf16_bits_to_f32(f32_to_bf16_bits(xs[k]))) * double(bf16_bits_to_f32(wbs[k * 333 + n].bits));
            }
            CHECK(out[0].values<float>()[n] == Approx(s).margin(1e-5));
            CHECK(bf16_bits_to_f32(out[1].values<bfloat16>()[n].bits) == Approx(sb).epsilon(1.0 / 128).margin(1e-2));
        }
        // Bound, both weights are kept transposed ([vocab, hidden], rows contiguous)
        // and read one dot per row: the same products, summed in another order.
        cpu::executor bound(g, {.threads = threads});
        bound.bind(w, cpu::array::borrow(dtype::f32, {{"", 96}, {"", 333}}, ws.data(), ws.size() * 4));
        bound.bind(wb, cpu::array::borrow(dtype::bf16, {{"", 96}, {"", 333}}, wbs.data(), wbs.size() * 2));
        const auto again = bound({cpu::array::borrow(dtype::f32, {{"", 1}, {"", 96}}, xs.data(), xs.size() * 4)});
        CHECK(bound.stats().packed_bytes == 96 * 333 * (4 + 2));
        for (std::size_t n = 0; n < 333; ++n) {
            CHECK(again[0].values<float>()[n] == Approx(out[0].values<float>()[n]).margin(1e-5));
            const float a = bf16_bits_to_f32(out[1].values<bfloat16>()[n].bits);
            const float b = bf16_bits_to_f32(again[1].values<bfloat16>()[n].bits);
            CHECK(b == Approx(a).epsilon(1.0 / 128).margin(1e-3));
        }
    }
}

TEST_CASE("cpu: intermediates' buffers are recycled, within a run and across runs") {
    graph g("recycle");
    g.bind(tokens(64), hidden(256), vocab(128));
    auto x = g.parameter(f32[tokens, hidden], "x");
    auto w = g.parameter(f32[hidden, vocab], "w");
    auto y = x;
    // A chain of fused groups and reductions (over tokens: a reduction over the
    // last dimension would join its group, and the whole chain would be one).
    for (int i = 0; i < 6; ++i)
        y = exp(broadcast_to(mean<tokens>(y) - reduce_max<tokens>(y), y) * 0.01 + y * 0.5) - 1.0;
    auto z = dot<hidden>(y, w);
    g.outputs(z, softmax<vocab>(z));
    const auto xs = wave(64 * 256, 0.01), ws = wave(256 * 128, 0.02);
    const std::vector<cpu::array> in = {cpu::array::borrow(dtype::f32, {{"", 256}, {"", 128}}, ws.data(), ws.size() * 4),  // w
                                        cpu::array::borrow(dtype::f32, {{"", 64}, {"", 256}}, xs.data(), xs.size() * 4)};  // x
    cpu::executor run(g);
    const auto first = run(std::span<const cpu::array>(in));
    // The first run also keeps the values that depend on no parameter (the scalars).
    const auto fresh_first = run.stats().fresh_buffers - run.stats().folded_values;
    const auto buffers_first = run.stats().buffers;
    INFO("first run: " << fresh_first << " fresh of " << buffers_first);
    (void)run(std::span<const cpu::array>(in));
    const auto second = run(std::span<const cpu::array>(in));
    CHECK(fresh_first * 2 < buffers_first);  // half are reused within the first run already
    CHECK(run.stats().fresh_buffers == 2);  // once warm, only the two outputs, which leave each run
    for (std::size_t k = 0; k < 2; ++k)
        CHECK(std::memcmp(first[k].data(), second[k].data(), first[k].bytes()) == 0);
}

// A kernel's result is returned, not copied: a product of BERT's FFN at batch 8
// is 12 MiB, and copying it cost 5 % of the product. The pool is primed with
// one block of the result's size, which the kernel takes for its result: a copy
// would be written into another block.
TEST_CASE("cpu: a product's and a gather's results are returned in the block they were computed in, not copied") {
    graph g("returned");
    g.bind(tokens(24), hidden(40), vocab(56));
    auto x = g.parameter(f32[tokens, hidden], "x");
    auto w = g.parameter(f32[hidden, vocab], "w");
    auto ids = g.parameter(s32[tokens], "ids");
    auto table = g.parameter(f32[vocab, hidden], "table");
    auto product = dot<hidden>(x, w);
    auto rows = gather<vocab>(table, ids);
    const auto xs = wave(24 * 40, 0.01), ws = wave(40 * 56, 0.02), ts = wave(56 * 40, 0.03);
    std::vector<std::int32_t> is(24);
    for (std::size_t i = 0; i < is.size(); ++i) is[i] = static_cast<std::int32_t>(i * 5 % 56);
    const auto xa = cpu::array::borrow(dtype::f32, x.shape(), xs.data(), xs.size() * 4);
    const auto wa = cpu::array::borrow(dtype::f32, w.shape(), ws.data(), ws.size() * 4);
    const auto ia = cpu::array::borrow(dtype::s32, ids.shape(), is.data(), is.size() * 4);
    const auto ta = cpu::array::borrow(dtype::f32, table.shape(), ts.data(), ts.size() * 4);
    cpu::buffer_pool pool;
    const cpu::buffer_pool::scope scope(&pool);
    auto primed = [](const shape& dims) {  // a block of that size, now waiting in the pool
        auto a = cpu::array::uninitialized(dtype::f32, dims);
        const void* at = a.data();
        a = cpu::array();
        return at;
    };
    const void* block = primed(product.shape());
    const auto p = cpu::kernels::dot(g[product.id()], xa, wa);
    CHECK(p.data() == block);
    CHECK(pool.fresh() == 1);  // the primed block only
    for (std::int64_t t = 0; t < 24; t += 7)
        for (std::int64_t v = 0; v < 56; v += 11) {
            double want = 0;
            for (std::int64_t h = 0; h < 40; ++h) want += double(xs[std::size_t(t * 40 + h)]) * ws[std::size_t(h * 56 + v)];
            CHECK(p.values<float>()[std::size_t(t * 56 + v)] == Approx(want).margin(1e-5));
        }
    block = primed(rows.shape());
    const auto r = cpu::kernels::gather(g[rows.id()], ta, ia);
    CHECK(r.data() == block);
    CHECK(pool.fresh() == 2);
    CHECK(r.values<float>()[0] == ts[0]);  // [hidden, tokens]: hidden 0 of token 0's row, row 0
}

TEST_CASE("cpu: fused groups and reductions split over threads give bitwise the same results as one thread") {
    graph g("split");
    g.bind(tokens(64), hidden(1024));
    auto x = g.parameter(f32[tokens, hidden], "x");
    auto b = g.parameter(f32[hidden], "b");
    auto y = tanh(x * 0.5 + broadcast_to(b, x));
    g.outputs(softmax<hidden>(y), reduce_sum<tokens>(y), mean<hidden>(y * y));  // 65536 elements: large enough to split
    const auto xs = wave(64 * 1024, 0.003), bs = wave(1024, 0.1);
    const std::vector<cpu::array> in = {cpu::array::borrow(dtype::f32, {{"", 1024}}, bs.data(), bs.size() * 4),  // b
                                        cpu::array::borrow(dtype::f32, {{"", 64}, {"", 1024}}, xs.data(), xs.size() * 4)};  // x
    const auto one = cpu::executor(g, {.threads = 1})(std::span<const cpu::array>(in));
    const auto two = cpu::executor(g, {.threads = 2})(std::span<const cpu::array>(in));
    for (std::size_t k = 0; k < one.size(); ++k) {
        REQUIRE(one[k].bytes() == two[k].bytes());
        CHECK(std::memcmp(one[k].data(), two[k].data(), one[k].bytes()) == 0);
    }
    double s = 0;
    for (std::size_t t = 0; t < 64; ++t) s += std::tanh(0.5 * double(xs[t * 1024 + 5]) + double(bs[5]));
    CHECK(one[1].values<float>()[5] == Approx(s).epsilon(1e-5));
}

TEST_CASE("cpu: a constant computed inside a fused group is recomputed on every run from kept operands") {
    // 6 / 3 depends on no parameter but is fused into the divide that reads x, so
    // the group computes it on each run: the constants it reads must outlive the
    // first run (a gradient's seed 1 / k, fused so, once crashed a second step).
    graph g("fold_member");
    auto x = g.parameter(f32[], "x");
    auto k = g.constant(f32, 6.0) / g.constant(f32, 3.0);
    g.outputs(x / k);
    cpu::executor run(g);
    const auto member = static_cast<std::size_t>(k.id());
    const auto root = run.fusion().group_of[member];
    REQUIRE(root >= 0);
    REQUIRE(static_cast<std::size_t>(root) != member);  // a member, not the root
    for (int pass = 0; pass < 3; ++pass) {
        const float xs = 1.5f + static_cast<float>(pass);
        const auto out = run({cpu::array::borrow(dtype::f32, {}, &xs, 4)});
        CHECK(out[0].values<float>()[0] == xs / 2.0f);
    }
}

TEST_CASE("cpu: values that depend on no parameter are computed once and kept") {
    graph g("fold");
    g.bind(rows(37), keys(41));
    auto x = g.parameter(f32[rows, keys], "x");
    auto allowed = le(g.iota(s32[rows, keys], keys), g.iota(s32[rows, keys], rows));  // a causal mask
    auto masked = select(allowed, x, broadcast_to(g.constant(f32, -1e9), x));
    auto mask_f = convert<f32>(allowed);  // an output computed from constants only
    g.outputs(masked, mask_f);
    const auto xs = wave(37 * 41, 0.3);
    const auto in = cpu::array::borrow(dtype::f32, {{"", 37}, {"", 41}}, xs.data(), xs.size() * 4);
    std::vector<cpu::array> first, second;
    {
        cpu::executor run(g);
        first = run({in});
        const auto folded = run.stats().folded_bytes;
        CHECK(folded >= 37 * 41);  // at least the mask is kept
        second = run({in});
        CHECK(run.stats().folded_bytes == folded);  // nothing new is folded on the next run
    }  // the executor and its kept values are gone; the outputs are the caller's own
    for (std::int64_t r = 0; r < 37; ++r)
        for (std::int64_t k = 0; k < 41; ++k) {
            const auto i = static_cast<std::size_t>(r * 41 + k);
            const float want = k <= r ? xs[i] : -1e9f;
            CHECK(first[0].values<float>()[i] == want);
            CHECK(second[0].values<float>()[i] == want);
            CHECK(first[1].values<float>()[i] == (k <= r ? 1.0f : 0.0f));
            CHECK(second[1].values<float>()[i] == (k <= r ? 1.0f : 0.0f));
        }
    CHECK(first[1].owns());
    CHECK(second[1].owns());
    CHECK(first[1].data() != second[1].data());
}

TEST_CASE("cpu: a renamed value that outlives the rename's readers is viewed, not copied") {
    // As a decoder's KV cache: updated in place, returned, and read under another
    // name by attention.
    graph g("cache_view");
    g.bind(rows(3), keys(10), a(1), c(4), hidden(10));
    auto cache = g.parameter(f32[rows, keys, c], "cache");
    auto fresh = g.parameter(f32[rows, a, c], "new");
    auto y = dynamic_update_slice<keys>(cache, rename<a, keys>(fresh), g.constant(s32, 2));
    auto seen = rename<keys, hidden>(y);
    g.outputs(reduce_sum<hidden>(seen), y);
    g.alias(1, cache);
    const auto cs = wave(3 * 10 * 4, 0.21), ns = wave(3 * 4, 0.7);
    auto in = std::vector<cpu::array>{};
    in.push_back(cpu::array::uninitialized(dtype::f32, {{"", 3}, {"", 10}, {"", 4}}));
    std::memcpy(in[0].mutable_data(), cs.data(), cs.size() * 4);
    in.push_back(cpu::array::borrow(dtype::f32, {{"", 3}, {"", 1}, {"", 4}}, ns.data(), ns.size() * 4));
    cpu::executor run(g);
    const auto out = run.run_donating(std::move(in));
    for (std::size_t r = 0; r < 3; ++r)
        for (std::size_t k = 0; k < 4; ++k) {
            double want = 0;
            for (std::size_t t = 0; t < 10; ++t) want += t == 2 ? ns[r * 4 + k] : cs[(r * 10 + t) * 4 + k];
            CHECK(out[0].values<float>()[r * 4 + k] == Approx(want).margin(1e-5));
            CHECK(out[1].values<float>()[(r * 10 + 2) * 4 + k] == ns[r * 4 + k]);
        }
    CHECK(run.stats().peak_bytes < 2 * cs.size() * 4);  // the cache once: no renamed copy of it
}

TEST_CASE("cpu: a donated cache is updated in place, each row at its own position") {
    graph g("cache_rows");
    g.bind(rows(3), keys(10), a(1), c(4));
    auto cache = g.parameter(f32[rows, keys, c], "cache");
    auto fresh = g.parameter(f32[rows, a, c], "new");  // one new entry per row
    auto pos = g.parameter(s32[rows], "pos");
    auto y = cache;
    for (int r = 0; r < 3; ++r)
        y = dynamic_update_slice<rows, keys>(y, rename<a, keys>(slice<rows>(fresh, r, r + 1)), g.constant(s32, r),
                                            reduce_sum<rows>(slice<rows>(pos, r, r + 1)));
    g.outputs(y);
    g.alias(0, cache);

    const auto cs = wave(3 * 10 * 4, 0.21), ns = wave(3 * 4, 0.7);
    const std::vector<std::int32_t> ps = {4, 0, 12};  // the last is clamped to 9
    auto want = cs;
    for (std::size_t r = 0; r < 3; ++r)
        for (std::size_t k = 0; k < 4; ++k) want[(r * 10 + std::min<std::size_t>(static_cast<std::size_t>(ps[r]), 9)) * 4 + k] = ns[r * 4 + k];
    auto owned_cache = [&] {
        auto x = cpu::array::uninitialized(dtype::f32, {{"", 3}, {"", 10}, {"", 4}});
        std::memcpy(x.mutable_data(), cs.data(), cs.size() * 4);
        return x;
    };
    const auto fresh_in = cpu::array::borrow(dtype::f32, {{"", 3}, {"", 1}, {"", 4}}, ns.data(), ns.size() * 4);
    const auto pos_in = cpu::array::borrow(dtype::s32, {{"", 3}}, ps.data(), ps.size() * 4);
    cpu::executor run(g);

    // Not donated: the input stays as it was.
    const auto kept = owned_cache();
    const auto copied = run({kept, fresh_in, pos_in});
    CHECK(std::memcmp(copied[0].data(), want.data(), want.size() * 4) == 0);
    CHECK(std::memcmp(kept.data(), cs.data(), cs.size() * 4) == 0);

    // Donated: the output is the input's buffer, written where the rows changed.
    std::vector<cpu::array> in;
    in.push_back(owned_cache());
    const auto* buffer = in[0].data();
    in.push_back(fresh_in);
    in.push_back(pos_in);
    const auto out = run.run_donating(std::move(in));
    CHECK(out[0].data() == buffer);
    CHECK(std::memcmp(out[0].data(), want.data(), want.size() * 4) == 0);
    CHECK(run.stats().peak_bytes < 2 * cs.size() * 4);  // the cache once (donated), never a copy of it

    // A borrowed (read-only) cache cannot be donated: it is copied, not written.
    const auto borrowed = cpu::array::borrow(dtype::f32, {{"", 3}, {"", 10}, {"", 4}}, cs.data(), cs.size() * 4);
    std::vector<cpu::array> in2 = {borrowed, fresh_in, pos_in};
    const auto out2 = run.run_donating(std::move(in2));
    CHECK(out2[0].data() != static_cast<const void*>(cs.data()));
    CHECK(std::memcmp(out2[0].data(), want.data(), want.size() * 4) == 0);
    CHECK(cs[0] == wave(1, 0.21)[0]);
}

TEST_CASE("cpu: an element-wise group writes over the buffer it reads for the last time") {
    // As an optimizer step: the new weight takes the donated old weight's place,
    // and the sum of an intermediate with itself its operand's.
    graph g("update");
    g.bind(rows(96), c(40), hidden(24));
    auto w = g.parameter(f32[rows, c], "w");
    auto x = g.parameter(f32[rows, hidden], "x");
    auto v = g.parameter(f32[hidden, c], "v");
    auto t = dot<hidden>(x, v);                           // an intermediate [rows, c]
    auto w2 = w * g.constant(f32, 0.5f) + t * t - t;      // reads w and t element for element
    g.outputs(w2, t);                                     // t is kept: only w's buffer can be written over
    g.alias(0, w);
    const auto ws = wave(96 * 40, 0.3), xs = wave(96 * 24, 0.7), vs = wave(24 * 40, 0.11);
    std::vector<float> want(ws.size());
    for (std::size_t r = 0; r < 96; ++r)
        for (std::size_t k = 0; k < 40; ++k) {
            double d = 0;
            for (std::size_t h = 0; h < 24; ++h) d += static_cast<double>(xs[r * 24 + h]) * vs[h * 40 + k];
            want[r * 40 + k] = static_cast<float>(ws[r * 40 + k] * 0.5 + d * d - d);
        }
    auto owned = [&] {
        auto a = cpu::array::uninitialized(dtype::f32, {{"", 96}, {"", 40}});
        std::memcpy(a.mutable_data(), ws.data(), ws.size() * 4);
        return a;
    };
    const auto xin = cpu::array::borrow(dtype::f32, {{"", 96}, {"", 24}}, xs.data(), xs.size() * 4);
    const auto vin = cpu::array::borrow(dtype::f32, {{"", 24}, {"", 40}}, vs.data(), vs.size() * 4);
    cpu::executor run(g, {.threads = 2});
    auto check = [&](const cpu::array& out) {
        for (std::size_t i = 0; i < want.size(); ++i) CHECK(out.values<float>()[i] == Approx(want[i]).margin(1e-4));
    };
    // Not donated: w is read, not written; the result is a new buffer beside t's.
    const auto kept = owned();
    check(run({{"w", kept}, {"x", xin}, {"v", vin}})[0]);
    CHECK(std::memcmp(kept.data(), ws.data(), ws.size() * 4) == 0);
    // Donated: the result is w's buffer, and t is the only other buffer made.
    cpu::named_arrays in;
    in.emplace_back("w", owned());
    const auto* buffer = in[0].second.data();
    in.emplace_back("x", xin.view());
    in.emplace_back("v", vin.view());
    const auto out = run.run_donating(std::move(in));
    CHECK(out[0].data() == buffer);
    check(out[0]);
    CHECK(run.planned_peak_bytes() < 2 * ws.size() * 4);  // t alone: the result writes over w

    // An intermediate read for the last time: the result takes its buffer.
    graph h("square");
    h.bind(rows(96), c(40), hidden(24));
    auto hx = h.parameter(f32[rows, hidden], "x");
    auto hv = h.parameter(f32[hidden, c], "v");
    auto ht = dot<hidden>(hx, hv);
    h.outputs(ht * ht - ht);
    cpu::executor square(h);
    const auto y = square({{"x", xin}, {"v", vin}});
    for (std::size_t i = 0; i < want.size(); ++i)
        CHECK(y[0].values<float>()[i] == Approx(want[i] - ws[i] * 0.5f).margin(1e-4));
    CHECK(square.planned_peak_bytes() == ws.size() * 4);
    CHECK(square.stats().peak_bytes == ws.size() * 4);
}

TEST_CASE("cpu: a group that writes over its operand still reads the operand's transposed copy") {
    graph g("transposed_reader");
    g.bind(rows(24), c(24), a(24), hidden(8));
    auto x = g.parameter(f32[rows, hidden], "x");
    auto v = g.parameter(f32[hidden, c], "v");
    auto t = dot<hidden>(x, v);  // [rows, c], square
    g.outputs(t + rename<a, rows>(rename<rows, c>(rename<c, a>(transpose<c, rows>(t)))));  // t[r, k] + t[k, r]
    const auto xs = wave(24 * 8, 0.7), vs = wave(8 * 24, 0.11);
    std::vector<double> d(24 * 24);
    for (std::size_t r = 0; r < 24; ++r)
        for (std::size_t k = 0; k < 24; ++k)
            for (std::size_t h = 0; h < 8; ++h) d[r * 24 + k] += static_cast<double>(xs[r * 8 + h]) * vs[h * 24 + k];
    cpu::executor run(g, {.threads = 2});
    const auto out = run({cpu::array::borrow(dtype::f32, {{"", 8}, {"", 24}}, vs.data(), vs.size() * 4),
                          cpu::array::borrow(dtype::f32, {{"", 24}, {"", 8}}, xs.data(), xs.size() * 4)});
    for (std::size_t r = 0; r < 24; ++r)
        for (std::size_t k = 0; k < 24; ++k) CHECK(out[0].values<float>()[r * 24 + k] == Approx(d[r * 24 + k] + d[k * 24 + r]).margin(1e-4));
}

TEST_CASE("cpu: decode against a transposed weight (x . W^T, the tied LM head) streams W's rows") {
    graph g("lm_head_t");
    g.bind(tokens(1), hidden(96), vocab(333));
    auto x = g.parameter(f32[tokens, hidden], "x");
    auto w = g.parameter(f32[vocab, hidden], "w");  // rows along the contracted dim
    auto wb = g.parameter(bf16[vocab, hidden], "wb");
    g.outputs(dot<hidden>(x, w), dot<hidden>(convert<bf16>(x), wb));
    const auto xs = wave(96, 0.3), ws = wave(333 * 96, 0.05);
    std::vector<bfloat16> wbs(ws.size());
    for (std::size_t i = 0; i < ws.size(); ++i) wbs[i].bits = f32_to_bf16_bits(ws[i]);
    for (unsigned threads : {1u, 2u}) {
        const auto out = cpu::executor(g, {.threads = threads})(
            {{"x", cpu::array::borrow(dtype::f32, {{"", 1}, {"", 96}}, xs.data(), xs.size() * 4)},
             {"w", cpu::array::borrow(dtype::f32, {{"", 333}, {"", 96}}, ws.data(), ws.size() * 4)},
             {"wb", cpu::array::borrow(dtype::bf16, {{"", 333}, {"", 96}}, wbs.data(), wbs.size() * 2)}});
        for (std::size_t n = 0; n < 333; ++n) {
            double s = 0, sb = 0;
            for (std::size_t k = 0; k < 96; ++k) {
                s += double(xs[k]) * double(ws[n * 96 + k]);
                sb += double(bf16_bits_to_f32(f32_to_bf16_bits(xs[k]))) * double(bf16_bits_to_f32(wbs[n * 96 + k].bits));
            }
            CHECK(out[0].values<float>()[n] == Approx(s).margin(1e-5));
            CHECK(bf16_bits_to_f32(out[1].values<bfloat16>()[n].bits) == Approx(sb).epsilon(1.0 / 128).margin(1e-2));
        }
        // Bound: the borrowed f32 weight (like an mmapped file's) is copied into the
        // executor's memory; the owned bf16 one, already [vocab, hidden], is read in place.
        cpu::executor bound(g, {.threads = threads});
        bound.bind(w, cpu::array::borrow(dtype::f32, {{"", 333}, {"", 96}}, ws.data(), ws.size() * 4));
        auto owned = cpu::array::uninitialized(dtype::bf16, {{"", 333}, {"", 96}});
        std::memcpy(owned.mutable_data(), wbs.data(), wbs.size() * 2);
        bound.bind(wb, std::move(owned));
        const auto again = bound({cpu::array::borrow(dtype::f32, {{"", 1}, {"", 96}}, xs.data(), xs.size() * 4)});
        CHECK(bound.stats().packed_bytes == 333 * 96 * 4);
        for (std::size_t n = 0; n < 333; ++n) {
            CHECK(again[0].values<float>()[n] == Approx(out[0].values<float>()[n]).margin(1e-5));
            CHECK(again[1].values<bfloat16>()[n].bits == out[1].values<bfloat16>()[n].bits);  // same kernel, same order
        }
    }
}

TEST_CASE("cpu: a softmax masked by a pred broadcast over heads and queries gives masked keys exactly 0, in f32 and bf16") {
    // Attention's mask: pred [rows, keys] broadcast to the scores [rows, heads,
    // tokens, keys] and read in place by the fused select, a run of keys at a time.
    for (const auto type : {dtype::f32, dtype::bf16}) {
        INFO(name(type));
        graph g("masked");
        g.bind(rows(3), heads(2), tokens(5), keys(37));
        auto run_case = [&](auto t) {
            auto s = g.parameter(t[rows, heads, tokens, keys], "s");
            auto m = g.parameter(pred[rows, keys], "m");
            auto floor = broadcast_to(g.constant(t, -1e30), s);
            g.outputs(softmax<keys>(select(broadcast_to(m, s), s * 0.5, floor)));
        };
        if (type == dtype::bf16) run_case(bf16); else run_case(f32);
        const auto es = static_cast<std::size_t>(info(type).bytes);
        const std::size_t count = 3 * 2 * 5 * 37;
        std::vector<unsigned char> sv(count * es);
        for (std::size_t i = 0; i < count; ++i) store_as(type, std::sin(0.3 * static_cast<double>(i)) * 4, sv.data() + i * es);
        std::vector<std::uint8_t> mv(3 * 37);
        for (std::size_t b = 0; b < 3; ++b)
            for (std::size_t k = 0; k < 37; ++k) mv[b * 37 + k] = k < 37 - 9 * b && k != 3 * b + 1;  // padding, and a hole
        const auto S = cpu::array::borrow(type, {{"", 3}, {"", 2}, {"", 5}, {"", 37}}, sv.data(), sv.size());
        const auto M = cpu::array::borrow(dtype::pred, {{"", 3}, {"", 37}}, mv.data(), mv.size());
        cpu::executor run(g);
        CHECK(run.fusion_report().find("read in place: broadcast") != std::string::npos);
        const auto out = run({{"s", S}, {"m", M}});
        const auto stored = [&](double v) {  // the value as the dtype holds it
            unsigned char tmp[8];  // store_as writes up to 8 bytes (f64)
            store_as(type, v, tmp);
            return load_as_double(type, tmp);
        };
        std::size_t wrong = 0;
        for (std::size_t b = 0; b < 3; ++b)
            for (std::size_t r = 0; r < 2 * 5; ++r) {
                const auto row = (b * 10 + r) * 37;
                double mx = -1e300, sum = 0;
                for (std::size_t k = 0; k < 37; ++k)
                    if (mv[b * 37 + k]) mx = std::max(mx, stored(load_as_double(type, sv.data() + (row + k) * es) * 0.5));
                for (std::size_t k = 0; k < 37; ++k)
                    if (mv[b * 37 + k]) sum += std::exp(stored(load_as_double(type, sv.data() + (row + k) * es) * 0.5) - mx);
                for (std::size_t k = 0; k < 37; ++k) {
                    const double got = load_as_double(type, out[0].data() + (row + k) * es);
                    if (!mv[b * 37 + k]) {
                        wrong += got != 0.0;
                        continue;
                    }
                    const double want = std::exp(stored(load_as_double(type, sv.data() + (row + k) * es) * 0.5) - mx) / sum;
                    wrong += std::abs(got - want) > (type == dtype::bf16 ? 0.02 * want + 1e-3 : 1e-5 * want + 1e-7);
                }
            }
        CHECK(wrong == 0);
    }
}

TEST_CASE("cpu: a layer norm over bias + residual runs as one row group, bit for bit as the unfused ops, on any thread count") {
    // Rows of 200 (two rows a block, the last block one row), of 700 (one a block)
    // and of 5000 (longer than a row group takes: left to the reduce kernel). The
    // second output is of the row shape: its group's root is a row value.
    for (const auto type : {dtype::f32, dtype::bf16})
        for (const std::int64_t H : {200, 700, 5000}) {
            INFO(name(type) << ", rows of " << H);
            graph g("layer_norm");
            g.bind(rows(37), hidden(H));
            auto run_case = [&](auto t) {
                auto y = g.parameter(t[rows, hidden], "y");
                auto r = g.parameter(t[rows, hidden], "r");
                auto b = g.parameter(t[hidden], "b");
                auto gamma = g.parameter(t[hidden], "gamma");
                auto h = y + broadcast_to(b, y) + r;
                auto centered = h - broadcast_to(mean<hidden>(h), h);
                auto inv = rsqrt(mean<hidden>(centered * centered) + 1e-5);
                g.outputs(centered * broadcast_to(inv, centered) * broadcast_to(gamma, centered) + 0.25,
                          reduce_min<hidden>(y * y) * 2.0 + reduce_max<hidden>(r));
            };
            if (type == dtype::bf16) run_case(bf16); else run_case(f32);
            const auto es = static_cast<std::size_t>(info(type).bytes);
            auto values = [&](std::size_t n, double f) {
                std::vector<unsigned char> v(n * es);
                for (std::size_t i = 0; i < n; ++i) store_as(type, std::sin(f * static_cast<double>(i)) * 3, v.data() + i * es);
                return v;
            };
            const auto n = static_cast<std::size_t>(37 * H), h = static_cast<std::size_t>(H);
            const auto ys = values(n, 0.37), rs = values(n, 0.11), bs = values(h, 0.5), gs = values(h, 0.7);
            const shape full{{"", 37}, {"", H}}, row{{"", H}};
            const auto Y = cpu::array::borrow(type, full, ys.data(), ys.size()), R = cpu::array::borrow(type, full, rs.data(), rs.size());
            const auto B = cpu::array::borrow(type, row, bs.data(), bs.size()), G = cpu::array::borrow(type, row, gs.data(), gs.size());
            auto run = [&](const cpu::executor& e) { return e({{"y", Y}, {"r", R}, {"b", B}, {"gamma", G}}); };
            cpu::executor plain(g, {.fuse = false});
            const auto want = run(plain);
            for (unsigned threads : {1u, 3u}) {
                INFO(threads << " threads");
                cpu::executor fused(g, {.threads = threads});
                INFO(fused.fusion_report());
                const auto row_groups = std::count_if(fused.fusion().groups.begin(), fused.fusion().groups.end(),
                                                      [](const cpu::fusion_group& grp) { return grp.row != 0; });
                CHECK(row_groups == (H <= 4096 ? 2 : 0));
                const auto got = run(fused);
                for (std::size_t k = 0; k < 2; ++k) {
                    REQUIRE(got[k].bytes() == want[k].bytes());
                    CHECK(std::memcmp(got[k].data(), want[k].data(), got[k].bytes()) == 0);
                }
                if (H <= 4096) CHECK(fused.stats().peak_bytes == got[0].bytes() + got[1].bytes());  // nothing else is written
            }
        }
}

}  // namespace test_cpu
