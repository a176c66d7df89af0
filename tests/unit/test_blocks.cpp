// What docs/ops.md and docs/blocks.md promise about take<D>, C++ numbers in the
// binary element-wise functions, the nn blocks' formulas and the column- and
// row-parallel linear layers, checked on the CPU executor against values
// computed here with plain loops and <cmath>.
//
// Parameters are named in the order they are made ("a_...", "b_...") so that
// the positional inputs below are in parameter order whichever way the graph
// numbers its parameters (by creation or by name).
#include <catch2/catch.hpp>

#include "threads.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <numbers>
#include <thread>
#include <type_traits>
#include <vector>

#include <scribe/cpu.hpp>
#include <scribe/parallel/layers.hpp>
#include <scribe/parallel/weights.hpp>

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_blocks {

using namespace scribe;

namespace {
SCRIBE_DIM(rows);
SCRIBE_DIM(cols);
SCRIBE_DIM(depth);

template <auto Spec, class X>
void expect_type(const X&) {
    static_assert(std::is_same_v<X, tensor_of<Spec>>);
}

cpu::array f32_array(std::vector<float>& v, shape dims) {
    return cpu::array::borrow(dtype::f32, std::move(dims), v.data(), v.size() * sizeof(float));
}

std::vector<float> floats(const cpu::array& a) {
    const auto v = a.values<float>();
    return {v.begin(), v.end()};
}

using scribe_test::on_threads;
}  // namespace

TEST_CASE("binary functions take a C++ number on either side, as a scalar of the tensor's dtype") {
    graph g("numbers");
    g.bind(rows(2), cols(3));
    auto x = g.parameter(f32[rows, cols], "a_x");
    auto n = g.parameter(s32[rows, cols], "b_n");
    expect_type<f32[rows, cols]>(maximum(x, 0.0));
    expect_type<f32[rows, cols]>(pow(2, x));
    expect_type<pred[rows, cols]>(lt(x, 0.5f));
    expect_type<s32[rows, cols]>(minimum(3, n));
    g.outputs(maximum(x, 0.0), minimum(0.5, x), pow(x, 2), pow(2.0, x), add(x, 1), subtract(1, x), multiply(x, 3),
              divide(1.0, x), maximum(n, 0), minimum(2, n), lt(x, 0.0), ge(0, n), compare<comparison::ne>(n, 1),
              x * 2 + 1 - 0.5 / x);
    std::vector<float> xs = {-1.5f, 0.25f, 2.0f, 3.0f, -0.5f, 1.0f};
    std::vector<std::int32_t> ns = {-3, 0, 1, 2, 5, -1};
    const auto out = cpu::executor(g)(
        {f32_array(xs, {{"rows", 2}, {"cols", 3}}),
         cpu::array::borrow(dtype::s32, {{"rows", 2}, {"cols", 3}}, ns.data(), ns.size() * sizeof(std::int32_t))});
    REQUIRE(out.size() == 14);
    for (std::size_t i = 0; i < 6; ++i) {
        const double v = xs[i];
        const auto f = [&](std::size_t k) { return double(out[k].values<float>()[i]); };
        const auto s = [&](std::size_t k) { return out[k].values<std::int32_t>()[i]; };
        const auto p = [&](std::size_t k) { return out[k].values<bool>()[i]; };
        INFO("element " << i << ", x = " << v << ", n = " << ns[i]);
        CHECK(f(0) == std::max(v, 0.0));
        CHECK(f(1) == std::min(0.5, v));
        CHECK(f(2) == Approx(v * v));
        CHECK(f(3) == Approx(std::pow(2.0, v)));
        CHECK(f(4) == v + 1);
        CHECK(f(5) == 1 - v);
        CHECK(f(6) == v * 3);
        CHECK(f(7) == Approx(1.0 / v));
        CHECK(s(8) == std::max(ns[i], 0));
        CHECK(s(9) == std::min(2, ns[i]));
        CHECK(p(10) == (v < 0.0));
        CHECK(p(11) == (0 >= ns[i]));
        CHECK(p(12) == (ns[i] != 1));
        CHECK(f(13) == Approx(v * 2 + 1 - 0.5 / v));
    }
    // As for the operators: an integer dtype takes only numbers it holds exactly.
    CHECK_THROWS_WITH(maximum(n, 0.5), Catch::Contains("0.5") && Catch::Contains("not a value of s32"));
    CHECK_THROWS_WITH(pow(1e10, n), Catch::Contains("not a value of s32"));
    CHECK_THROWS_WITH(lt(n, 2.5), Catch::Contains("not a value of s32"));
    auto u = g.parameter(u8[rows], "c_u");
    CHECK_THROWS_WITH(minimum(u, -1), Catch::Contains("not a value of u8"));
    CHECK_NOTHROW(minimum(u, 255));
}

TEST_CASE("take<D>(x, i) picks index i of D and drops D; a tensor index is clamped, a C++ index checked") {
    graph g("take");
    g.bind(rows(2), cols(3), depth(4));
    auto x = g.parameter(f32[rows, cols.of<3>, depth], "a_x");
    auto i = g.parameter(s32[], "b_i");
    auto j = g.parameter(s64[], "c_j");
    auto v = g.parameter(f32[depth], "d_v");
    expect_type<f32[rows, depth]>(take<cols>(x, 1));
    expect_type<f32[cols.of<3>, depth]>(take<rows>(x, i));
    expect_type<f32[]>(take<depth>(v, 3));
    g.outputs(take<cols>(x, 2), take<rows>(x, i), take<depth>(x, j), take<depth>(v, std::size_t{3}),
              take<depth>(v, j));
    std::vector<float> xs(2 * 3 * 4), vs = {10, 20, 30, 40};
    for (std::size_t k = 0; k < xs.size(); ++k) xs[k] = static_cast<float>(k);  // x[r, c, d] = 12 r + 4 c + d
    const auto at = [&](std::int64_t r, std::int64_t c, std::int64_t d) { return float(12 * r + 4 * c + d); };
    cpu::executor run(g);
    for (const auto& [iv, jv] : std::vector<std::pair<std::int32_t, std::int64_t>>{{0, 0}, {1, 3}, {-5, 99}, {7, -1}}) {
        INFO("i = " << iv << ", j = " << jv);
        const auto out = run({f32_array(xs, {{"rows", 2}, {"cols", 3}, {"depth", 4}}),
                              cpu::array::borrow(dtype::s32, {}, &iv, sizeof iv),
                              cpu::array::borrow(dtype::s64, {}, &jv, sizeof jv), f32_array(vs, {{"depth", 4}})});
        const auto ic = std::clamp<std::int64_t>(iv, 0, 1), jc = std::clamp<std::int64_t>(jv, 0, 3);  // as XLA clamps
        CHECK(out[0].dims() == shape{{"rows", 2}, {"depth", 4}});
        CHECK(out[1].dims() == shape{{"cols", 3}, {"depth", 4}});
        CHECK(out[2].dims() == shape{{"rows", 2}, {"cols", 3}});
        CHECK(out[3].dims().empty());
        for (std::int64_t r = 0; r < 2; ++r)
            for (std::int64_t d = 0; d < 4; ++d) CHECK(out[0].values<float>()[std::size_t(r * 4 + d)] == at(r, 2, d));
        for (std::int64_t c = 0; c < 3; ++c)
            for (std::int64_t d = 0; d < 4; ++d) CHECK(out[1].values<float>()[std::size_t(c * 4 + d)] == at(ic, c, d));
        for (std::int64_t r = 0; r < 2; ++r)
            for (std::int64_t c = 0; c < 3; ++c) CHECK(out[2].values<float>()[std::size_t(r * 3 + c)] == at(r, c, jc));
        CHECK(out[3].values<float>()[0] == 40.0f);
        CHECK(out[4].values<float>()[0] == vs[std::size_t(jc)]);
    }
    const auto nodes = g.nodes().size();
    CHECK_THROWS_WITH(take<cols>(x, 3), Catch::Contains("[scribe] take: index 3 is outside `cols` of extent 3"));
    CHECK_THROWS_WITH(take<depth>(x, -1), Catch::Contains("index -1 is outside `depth` of extent 4"));
    CHECK(g.nodes().size() == nodes);  // nothing was added
}

TEST_CASE("nn blocks compute their documented formulas") {
    using namespace nn;
    graph g("blocks");
    g.bind(rows(2), hidden(4));
    auto x = g.parameter(f32[rows, hidden], "a_x");
    auto gamma = g.parameter(f32[hidden], "b_gamma");
    auto beta = g.parameter(f32[hidden], "c_beta");
    g.outputs(gelu(x), gelu_tanh(x), relu(x), silu(x), activation(x, "gelu_new"), activation(x, "relu"),
              layer_norm<hidden>(x, gamma, beta, 1e-5), rms_norm<hidden>(x, gamma, 1e-6));
    std::vector<float> xs = {-2.0f, -0.5f, 0.0f, 1.5f, 3.0f, -1.0f, 0.25f, 0.75f}, gs = {1.0f, 0.5f, 2.0f, -1.0f},
                       bs = {0.0f, 0.1f, -0.2f, 0.3f};
    const auto out = cpu::executor(g)({f32_array(xs, {{"rows", 2}, {"hidden", 4}}), f32_array(gs, {{"hidden", 4}}),
                                       f32_array(bs, {{"hidden", 4}})});
    for (std::size_t r = 0; r < 2; ++r) {
        double mean = 0, sq = 0;
        for (std::size_t h = 0; h < 4; ++h) mean += xs[r * 4 + h] / 4.0, sq += double(xs[r * 4 + h]) * xs[r * 4 + h] / 4.0;
        double var = 0;
        for (std::size_t h = 0; h < 4; ++h) var += (xs[r * 4 + h] - mean) * (xs[r * 4 + h] - mean) / 4.0;
        for (std::size_t h = 0; h < 4; ++h) {
            const auto i = r * 4 + h;
            const double v = xs[i];
            INFO("x = " << v);
            const double erf_gelu = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
            const double tanh_gelu = 0.5 * v * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (v + 0.044715 * v * v * v)));
            CHECK(floats(out[0])[i] == Approx(erf_gelu).margin(1e-6));
            CHECK(floats(out[1])[i] == Approx(tanh_gelu).margin(1e-6));
            CHECK(floats(out[2])[i] == std::max(v, 0.0));
            CHECK(floats(out[3])[i] == Approx(v / (1 + std::exp(-v))).margin(1e-6));
            CHECK(floats(out[4])[i] == floats(out[1])[i]);  // gelu_new is the tanh form
            CHECK(floats(out[5])[i] == floats(out[2])[i]);
            CHECK(floats(out[6])[i] == Approx((v - mean) / std::sqrt(var + 1e-5) * gs[h] + bs[h]).margin(1e-5));
            CHECK(floats(out[7])[i] == Approx(v / std::sqrt(sq + 1e-6) * gs[h]).margin(1e-5));
        }
    }
}

// One rank's graph: y = column_linear(x, w1, b1) (ffn split), z = row_linear(y, w2, b2)
// (ffn contracted and summed), and the bias-less forms of both.
void megatron_pair(graph& g, const parallel::mesh& m) {
    using namespace nn;
    g.bind(seq(3), hidden(4), ffn(m.shard(ffn, 6)));
    auto x = g.parameter(f32[seq, hidden], "a_x");
    auto w1 = g.parameter(f32[hidden, ffn], "b_w1");
    auto b1 = g.parameter(f32[ffn], "c_b1");
    auto w2 = g.parameter(f32[ffn, hidden], "d_w2");
    auto b2 = g.parameter(f32[hidden], "e_b2");
    auto y = parallel::column_linear<hidden>(x, w1, b1, m);  // [seq, ffn]: this rank's slice
    auto z = parallel::row_linear<ffn>(y, w2, b2, m);        // [seq, hidden]: whole
    expect_type<f32[seq, ffn]>(y);
    expect_type<f32[seq, hidden]>(z);
    g.outputs(z, parallel::row_linear<ffn>(parallel::column_linear<hidden>(x, w1, m), w2, m));
}

TEST_CASE("parallel: column_linear then row_linear at TP 2 equals TP 1 and a plain loop") {
    std::vector<float> x(3 * 4), w1(4 * 6), b1(6), w2(6 * 4), b2(4);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.25f * float(i % 5) - 0.5f;
    for (std::size_t i = 0; i < w1.size(); ++i) w1[i] = 0.125f * float(i % 7) - 0.375f;
    for (std::size_t i = 0; i < b1.size(); ++i) b1[i] = 0.1f * float(i);
    for (std::size_t i = 0; i < w2.size(); ++i) w2[i] = 0.5f - 0.0625f * float(i % 11);
    for (std::size_t i = 0; i < b2.size(); ++i) b2[i] = -0.2f * float(i);
    const auto X = f32_array(x, {{"seq", 3}, {"hidden", 4}}), W1 = f32_array(w1, {{"hidden", 4}, {"ffn", 6}}),
               B1 = f32_array(b1, {{"ffn", 6}}), W2 = f32_array(w2, {{"ffn", 6}, {"hidden", 4}}),
               B2 = f32_array(b2, {{"hidden", 4}});
    // The reference: (x . w1 + b1) . w2 + b2, and x . w1 . w2.
    std::vector<double> want(12, 0.0), want_plain(12, 0.0);
    for (std::size_t s = 0; s < 3; ++s)
        for (std::size_t f = 0; f < 6; ++f) {
            double y = 0;
            for (std::size_t h = 0; h < 4; ++h) y += double(x[s * 4 + h]) * w1[h * 6 + f];
            for (std::size_t o = 0; o < 4; ++o) {
                want[s * 4 + o] += (y + b1[f]) * w2[f * 4 + o];
                want_plain[s * 4 + o] += y * w2[f * 4 + o];
            }
        }
    for (std::size_t s = 0; s < 3; ++s)
        for (std::size_t o = 0; o < 4; ++o) want[s * 4 + o] += b2[o];

    graph one("tp1");
    megatron_pair(one, {.degree = 1});
    const auto ref = cpu::executor(one)({X, W1, B1, W2, B2});
    for (std::size_t i = 0; i < 12; ++i) {
        CHECK(ref[0].values<float>()[i] == Approx(want[i]).margin(1e-5));
        CHECK(ref[1].values<float>()[i] == Approx(want_plain[i]).margin(1e-5));
    }
    CHECK(std::ranges::none_of(one.nodes(), [](const node& n) { return n.kind == op::all_reduce; }));

    graph two("tp2");
    megatron_pair(two, {.degree = 2});
    CHECK(std::ranges::count_if(two.nodes(), [](const node& n) { return n.kind == op::all_reduce; }) == 2);
    cpu::thread_group group(2);
    std::vector<std::vector<cpu::array>> got(2);
    on_threads(2, [&](int r) {
        cpu::executor e(two, {.threads = 1, .comm = &group[r]});
        // w1, b1 split along their output dim ffn, w2 along its contracted ffn; x, b2 whole.
        got[std::size_t(r)] = e({X, parallel::shard(W1, nn::ffn, 2, r), parallel::shard(B1, nn::ffn, 2, r),
                                 parallel::shard(W2, nn::ffn, 2, r), B2});
    });
    for (const auto& rank : got)
        for (std::size_t i = 0; i < 12; ++i) {
            CHECK(rank[0].values<float>()[i] == Approx(want[i]).margin(1e-5));
            CHECK(rank[1].values<float>()[i] == Approx(want_plain[i]).margin(1e-5));
        }
}

TEST_CASE("parallel: row_linear contracts several dimensions; mesh and shard take dimension objects") {
    using namespace nn;
    graph g("heads_out");
    g.bind(seq(2), heads(2), head_dim(3), hidden(2));
    auto ctx = g.parameter(f32[seq, heads, head_dim], "a_ctx");
    auto w = g.parameter(f32[heads, head_dim, hidden], "b_w");
    auto y = parallel::row_linear<heads, head_dim>(ctx, w, parallel::mesh{});
    expect_type<f32[seq, hidden]>(y);
    g.outputs(y);
    std::vector<float> cs(12), ws(12);
    for (std::size_t i = 0; i < 12; ++i) cs[i] = float(i) * 0.5f, ws[i] = 1.0f - 0.25f * float(i);
    const auto out = cpu::executor(g)({f32_array(cs, {{"seq", 2}, {"heads", 2}, {"head_dim", 3}}),
                                       f32_array(ws, {{"heads", 2}, {"head_dim", 3}, {"hidden", 2}})});
    for (std::size_t s = 0; s < 2; ++s)
        for (std::size_t o = 0; o < 2; ++o) {
            double want = 0;
            for (std::size_t k = 0; k < 6; ++k) want += double(cs[s * 6 + k]) * ws[k * 2 + o];
            CHECK(out[0].values<float>()[s * 2 + o] == Approx(want));
        }

    const parallel::mesh m{.degree = 4};
    CHECK(m.shard(heads, 12) == 3);
    CHECK_THROWS_WITH(m.shard(heads, 10), Catch::Contains("does not divide heads (10)"));
    const auto part = parallel::shard(cpu::array::borrow(dtype::f32, {{"heads", 2}, {"head_dim", 3}, {"hidden", 2}},
                                                         ws.data(), ws.size() * 4),
                                      heads, 2, 1);
    CHECK(part.dims() == shape{{"heads", 1}, {"head_dim", 3}, {"hidden", 2}});
    CHECK(part.values<float>()[0] == ws[6]);
    g.bind(cols(2));
    auto w3 = g.parameter(f32[hidden, cols], "c_w3");
    CHECK_THROWS_WITH((parallel::column_linear<hidden>(y, w3, parallel::mesh{.degree = 0})),
                      Catch::Contains("at least 1"));
}

}  // namespace test_blocks
