// Gradients (graph/grad.hpp, graph/vjp.hpp, ops/grad.hpp): every differentiable
// op, in f64, on several shapes (broadcasts, other orders, batch dimensions),
// against central finite differences of the same forward graph on the CPU
// backend; the typed API's types; the run-time errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <scribe/cpu.hpp>
#include <scribe/nn/layers.hpp>
#include <scribe/nn/losses.hpp>
#include <scribe/parallel/layers.hpp>
#include <scribe/parallel/weights.hpp>

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_grad {

using namespace scribe;

namespace {
SCRIBE_DIM(rows);
SCRIBE_DIM(cols);
SCRIBE_DIM(depth);
SCRIBE_DIM(items);
SCRIBE_DIM(flat);

// Values for parameters: a name's prefix picks the range of a float ("pos_" in
// [0.5, 2], "away_" away from zero, else normal); integer parameters take the
// values a case gives.
using values = std::map<std::string, std::vector<double>>;

struct checker {
    checker(std::function<void(graph&)> b, std::vector<std::string> w, values v = {})
        : bind(std::move(b)), wrt(std::move(w)), given(std::move(v)) {}
    std::function<void(graph&)> bind;
    std::vector<std::string> wrt;
    values given;
    double step = 1e-5;
    double tolerance = 1e-6;
};

std::vector<unsigned char> fill(const node& p, const values& given, std::mt19937& rng) {
    const auto count = static_cast<std::size_t>(element_count(p.dims));
    const auto bytes = static_cast<std::size_t>(info(p.type).bytes);
    std::vector<unsigned char> out(count * bytes);
    std::normal_distribution<double> normal;
    std::uniform_real_distribution<double> uniform(0.5, 2.0);
    const auto it = given.find(p.label);
    for (std::size_t i = 0; i < count; ++i) {
        double v;
        if (it != given.end()) v = it->second.at(i);
        else if (p.label.starts_with("pos_")) v = uniform(rng);
        else if (p.label.starts_with("away_")) v = (rng() % 2 ? 1 : -1) * uniform(rng);
        else v = normal(rng);
        store_as(p.type, v, out.data() + i * bytes);
    }
    return out;
}

// Builds the graph twice: with the gradients of the loss for `wrt` as outputs,
// and the forward pass alone; compares each gradient with central differences
// of the forward pass: max |grad - fd| <= tolerance * max |fd|.
template <class Build>
void check_gradients(const std::string& name, Build build, checker c) {
    INFO(name);
    graph with_grad(name), forward(name + "_forward");
    if (c.bind) {
        c.bind(with_grad);
        c.bind(forward);
    }
    auto loss = build(with_grad);
    std::vector<node_id> wrt;
    for (const auto& w : c.wrt) wrt.push_back(*with_grad.find_parameter(w));
    auto grads = gradients(with_grad, loss.id(), wrt);
    std::vector<node_id> outs{loss.id()};
    outs.insert(outs.end(), grads.begin(), grads.end());
    with_grad.set_outputs(outs);
    forward.outputs(build(forward));

    std::mt19937 rng(7);
    std::map<std::string, std::vector<unsigned char>> storage;
    for (auto id : with_grad.parameters()) storage[with_grad[id].label] = fill(with_grad[id], c.given, rng);
    auto run = [&](const graph& g, cpu::executor& ex) -> std::vector<cpu::array> {
        std::vector<cpu::array> arrays;
        std::vector<cpu::input> in;
        arrays.reserve(storage.size());
        for (auto id : g.parameters()) {
            const auto& p = g[id];
            auto& bytes = storage.at(p.label);
            arrays.push_back(cpu::array::borrow(p.type, p.dims, bytes.data(), bytes.size()));
            in.push_back({p.label, arrays.back()});
        }
        return ex(std::span<const cpu::input>(in));
    };
    cpu::executor grad_run(with_grad), forward_run(forward);
    const auto got = run(with_grad, grad_run);
    auto loss_of = [&]() -> double { return run(forward, forward_run)[0].template values<double>()[0]; };
    CHECK(loss_of() == Approx(got[0].template values<double>()[0]).epsilon(1e-12));
    for (std::size_t k = 0; k < c.wrt.size(); ++k) {
        INFO("gradient with respect to " << c.wrt[k]);
        auto& bytes = storage.at(c.wrt[k]);
        auto* x = reinterpret_cast<double*>(bytes.data());
        const auto g = got[k + 1].template values<double>();
        REQUIRE(g.size() * sizeof(double) == bytes.size());
        double worst = 0, scale = 0;
        for (std::size_t i = 0; i < g.size(); ++i) {
            const double saved = x[i];
            x[i] = saved + c.step;
            const double up = loss_of();
            x[i] = saved - c.step;
            const double down = loss_of();
            x[i] = saved;
            const double fd = (up - down) / (2 * c.step);
            worst = std::max(worst, std::abs(g[i] - fd));
            scale = std::max(scale, std::abs(fd));
        }
        CHECK(scale > 0);
        CHECK(worst <= c.tolerance * scale);
    }
}

// sum(y * weights): a scalar whose gradient with respect to y is a dense, varied
// cotangent (so a rule that is right only for ones is caught).
template <Tensor Y>
tensor<typename Y::dtype_type> weighted_sum(const Y& y) {
    using T = typename Y::dtype_type;
    graph& g = y.owner();
    const auto w = g.add_parameter(T::id, y.shape(), "zz_cotangent");
    return {g, ir::sum_all(g, ir::binary(g, op::mul, y.id(), w))};
}

void bind_small(graph& g) { g.bind_if_used(rows(3), cols(4), depth(2), items(5)); }

// f(x) for x f64[rows, cols, depth] named `name`, checked with respect to x.
template <class F>
void check_unary(const std::string& name, const std::string& param, F f) {
    check_gradients(name, [&](graph& g) { return weighted_sum(f(g.parameter(f64[rows, cols, depth], param))); },
                    {bind_small, {param}});
}

}  // namespace

TEST_CASE("gradients of the unary ops equal central differences") {
    check_unary("neg", "x", [](auto x) { return -x; });
    check_unary("abs", "away_x", [](auto x) { return abs(x); });
    check_unary("exp", "x", [](auto x) { return exp(x); });
    check_unary("expm1", "x", [](auto x) { return expm1(x); });
    check_unary("log1p", "pos_x", [](auto x) { return log1p(x); });
    check_unary("log", "pos_x", [](auto x) { return log(x); });
    check_unary("sqrt", "pos_x", [](auto x) { return sqrt(x); });
    check_unary("rsqrt", "pos_x", [](auto x) { return rsqrt(x); });
    check_unary("tanh", "x", [](auto x) { return tanh(x); });
    check_unary("logistic", "x", [](auto x) { return logistic(x); });
    check_unary("sin", "x", [](auto x) { return sin(x); });
    check_unary("cos", "x", [](auto x) { return cos(x); });
    check_unary("erf", "x", [](auto x) { return erf(x); });
}

TEST_CASE("gradients of the binary ops equal central differences, aligned by name and broadcast") {
    auto binary = [](const std::string& name, auto f, const std::string& a, const std::string& b) {
        check_gradients(name, [&](graph& g) {
            return weighted_sum(f(g.parameter(f64[rows, cols, depth], a), g.parameter(f64[rows, cols, depth], b)));
        }, {bind_small, {a, b}});
        // The rhs in another order: transposed into the lhs's.
        check_gradients(name + "_aligned", [&](graph& g) {
            return weighted_sum(f(g.parameter(f64[rows, cols, depth], a), g.parameter(f64[depth, rows, cols], b)));
        }, {bind_small, {a, b}});
        // A rank-0 operand broadcasts; an explicit broadcast_to sums back.
        check_gradients(name + "_scalar", [&](graph& g) {
            return weighted_sum(f(g.parameter(f64[rows, cols], a), g.parameter(f64[], b)));
        }, {bind_small, {a, b}, {{b, {0.25}}}});  // inside a's range: maximum and minimum pick each
        check_gradients(name + "_broadcast", [&](graph& g) {
            auto x = g.parameter(f64[rows, cols, depth], a);
            return weighted_sum(f(x, broadcast_to(g.parameter(f64[cols], b), x)));
        }, {bind_small, {a, b}});
    };
    binary("add", [](auto a, auto b) { return a + b; }, "a", "b");
    binary("subtract", [](auto a, auto b) { return a - b; }, "a", "b");
    binary("multiply", [](auto a, auto b) { return a * b; }, "a", "b");
    binary("divide", [](auto a, auto b) { return a / b; }, "a", "away_b");
    binary("maximum", [](auto a, auto b) { return maximum(a, b); }, "a", "b");
    binary("minimum", [](auto a, auto b) { return minimum(a, b); }, "a", "b");
    binary("power", [](auto a, auto b) { return pow(a, b); }, "pos_a", "b");
    check_unary("clamp", "x", [](auto x) { return clamp(x, -0.5, 0.75); });
    // A value used twice: the shares add up.
    check_unary("square", "x", [](auto x) { return x * x + exp(x) * x; });
}

TEST_CASE("gradients of select, convert and the layout ops equal central differences") {
    check_gradients("select", [](graph& g) {
        auto a = g.parameter(f64[rows, cols], "a");
        auto b = g.parameter(f64[cols, rows], "b");
        return weighted_sum(select(gt(a, 0.0), a * 2.0, b));
    }, {bind_small, {"a", "b"}});
    check_unary("broadcast", "x", [](auto x) { return broadcast<items>(x) * 1.5; });
    check_unary("transpose", "x", [](auto x) { return transpose<depth, rows, cols>(x); });
    check_unary("split_merge_rename", "x", [](auto x) {
        return split<flat, depth, rows>(merge<rows, depth, flat>(x));
    });
    check_unary("slice", "x", [](auto x) { return slice<cols>(x, 1, 3); });
    check_unary("pad", "x", [](auto x) { return pad<cols>(pad<rows>(x, 0.5, 2, 1), -1.0, -1, 2); });
    check_gradients("pad_value", [](graph& g) {
        auto x = g.parameter(f64[rows, cols], "x");
        auto v = g.parameter(f64[], "v");
        auto wide = pad<cols>(x, 0.0, 1, 2) + broadcast_to(v, pad<cols>(x, 0.0, 1, 2));
        return weighted_sum(wide);
    }, {bind_small, {"x", "v"}});
    check_gradients("concatenate", [](graph& g) {
        auto a = g.parameter(f64[rows, cols], "a");
        auto b = g.parameter(f64[rows, cols], "b");
        return weighted_sum(concatenate<cols>(a, b * b, a));
    }, {bind_small, {"a", "b"}});
    // The shares of disjoint slices are joined into one concatenation (with zeros
    // where no slice reads), overlapping ones summed.
    check_gradients("slices_of_one_value", [](graph& g) {
        auto x = g.parameter(f64[rows, cols], "x");
        return sum_all(slice<cols>(x, 2, 3) * 3.0) + sum_all(exp(slice<cols>(x, 0, 1))) +
               sum_all(slice<cols>(x, 3, 4) * slice<cols>(x, 3, 4)) + sum_all(sin(slice<cols>(x, 0, 2)));
    }, {bind_small, {"x"}});
    check_gradients("slices_with_a_gap", [](graph& g) {
        auto x = g.parameter(f64[rows, cols], "x");
        return sum_all(slice<cols>(x, 3, 4) * 2.0) + sum_all(slice<cols>(x, 0, 1) * slice<cols>(x, 0, 1));
    }, {bind_small, {"x"}});
    check_gradients("dynamic_slice", [](graph& g) {
        auto x = g.parameter(f64[rows, cols], "x");
        auto at = g.parameter(s32[], "at");
        return weighted_sum(dynamic_slice<cols>(x, at, 2));
    }, {bind_small, {"x"}, {{"at", {5}}}});  // clamped to 2, as XLA
    check_gradients("dynamic_update_slice", [](graph& g) {
        auto x = g.parameter(f64[rows, cols], "x");
        auto u = g.parameter(f64[rows, depth], "u");
        auto at = g.parameter(s32[], "at");
        return weighted_sum(dynamic_update_slice<cols>(x, rename<depth, cols>(u), at) * 3.0);
    }, {bind_small, {"x", "u"}, {{"at", {1}}}});
    check_gradients("take", [](graph& g) {
        auto x = g.parameter(f64[rows, cols], "x");
        return weighted_sum(take<cols>(x, 2) * take<cols>(x, 3));
    }, {bind_small, {"x"}});
}

TEST_CASE("gradients of dot equal central differences for every kind of contraction") {
    check_gradients("dot_matmul", [](graph& g) {
        return weighted_sum(dot<cols>(g.parameter(f64[rows, cols], "a"), g.parameter(f64[cols, depth], "b")));
    }, {bind_small, {"a", "b"}});
    check_gradients("dot_transposed_operands", [](graph& g) {
        return weighted_sum(dot<cols>(g.parameter(f64[cols, rows], "a"), g.parameter(f64[depth, cols], "b")));
    }, {bind_small, {"a", "b"}});
    check_gradients("dot_batched", [](graph& g) {
        auto a = g.parameter(f64[items, rows, cols], "a");
        auto b = g.parameter(f64[cols, depth, items], "b");
        return weighted_sum(dot<cols, batched<items>>(a, b));
    }, {bind_small, {"a", "b"}});
    check_gradients("dot_two_contracting", [](graph& g) {
        auto a = g.parameter(f64[rows, cols, depth], "a");
        auto b = g.parameter(f64[depth, items, cols], "b");
        return weighted_sum(dot<cols, depth>(a, b));
    }, {bind_small, {"a", "b"}});
    check_gradients("dot_vector", [](graph& g) {
        return weighted_sum(dot<cols>(g.parameter(f64[cols], "a"), g.parameter(f64[rows, cols], "b")));
    }, {bind_small, {"a", "b"}});
    check_gradients("dot_scalar_result", [](graph& g) {
        return dot<cols>(g.parameter(f64[cols], "a"), g.parameter(f64[cols], "b"));
    }, {bind_small, {"a", "b"}});
    check_gradients("dot_same_operand", [](graph& g) {
        auto a = g.parameter(f64[rows, cols], "a");
        return weighted_sum(dot<cols>(a, rename<rows, depth>(a)));
    }, {[](graph& g) { g.bind_if_used(rows(3), cols(4), depth(3)); }, {"a"}});
}

TEST_CASE("gradients of the reductions equal central differences") {
    check_unary("reduce_sum", "x", [](auto x) { return reduce_sum<cols>(x); });
    check_unary("reduce_sum_two", "x", [](auto x) { return reduce_sum<rows, depth>(x); });
    check_unary("reduce_max", "x", [](auto x) { return reduce_max<cols>(x); });
    check_unary("reduce_min_two", "x", [](auto x) { return reduce_min<cols, rows>(x); });
    check_unary("mean", "x", [](auto x) { return mean<depth>(x); });
    check_unary("softmax", "x", [](auto x) { return softmax<cols>(x); });
    check_unary("log_softmax", "x", [](auto x) { return log_softmax<rows>(x); });
}

TEST_CASE("gradients of gather and scatter_add equal central differences, repeated and out-of-range ids included") {
    check_gradients("gather", [](graph& g) {
        auto table = g.parameter(f64[items, cols], "table");
        auto ids = g.parameter(s32[rows, depth], "ids");
        return weighted_sum(gather<items>(table, ids));
    }, {bind_small, {"table"}, {{"ids", {0, 3, 3, 4, 9, -2}}}});
    check_gradients("scatter_add", [](graph& g) {
        auto table = g.parameter(f64[items, cols], "table");
        auto ids = g.parameter(s32[rows, depth], "ids");
        auto updates = g.parameter(f64[depth, cols, rows], "updates");
        return weighted_sum(scatter_add<items>(table * table, ids, updates * 2.0));
    }, {bind_small, {"table", "updates"}, {{"ids", {0, 3, 3, 4, 9, -2}}}});
}

TEST_CASE("gradients of the nn blocks equal central differences, by composition") {
    namespace n = scribe::nn;
    auto dims = [](graph& g) { g.bind_if_used(n::batch(2), n::seq(3), n::keys(3), n::hidden(4), n::heads(2), n::kv_heads(1), n::head_dim(4), n::vocab(5), n::ffn(3)); };
    check_gradients("layer_norm", [](graph& g) {
        auto x = g.parameter(f64[n::batch, n::seq, n::hidden], "x");
        return weighted_sum(n::layer_norm<n::hidden>(x, g.parameter(f64[n::hidden], "gamma"), g.parameter(f64[n::hidden], "beta"), 1e-5));
    }, {dims, {"x", "gamma", "beta"}});
    check_gradients("rms_norm", [](graph& g) {
        auto x = g.parameter(f64[n::batch, n::seq, n::hidden], "x");
        return weighted_sum(n::rms_norm<n::hidden>(x, g.parameter(f64[n::hidden], "w"), 1e-6));
    }, {dims, {"x", "w"}});
    check_gradients("activations", [](graph& g) {
        auto x = g.parameter(f64[n::batch, n::seq, n::hidden], "x");
        return weighted_sum(n::gelu(x) + n::gelu_tanh(x * 0.7) + n::silu(x * 1.3) + n::relu(x + 0.1));
    }, {dims, {"x"}});
    check_gradients("mlp", [](graph& g) {
        auto x = g.parameter(f64[n::batch, n::seq, n::hidden], "x");
        return weighted_sum(n::mlp(x, g.parameter(f64[n::hidden, n::ffn], "w1"), g.parameter(f64[n::ffn], "b1"),
                                   g.parameter(f64[n::ffn, n::hidden], "w2"), g.parameter(f64[n::hidden], "b2"),
                                   [](auto h) { return n::gelu_tanh(h); }));
    }, {dims, {"x", "w1", "b1", "w2", "b2"}});
    for (bool interleaved : {false, true})
        check_gradients(interleaved ? "rotary_interleaved" : "rotary", [&](graph& g) {
            auto x = g.parameter(f64[n::batch, n::seq, n::heads, n::head_dim], "x");
            auto pos = g.parameter(s32[n::batch, n::seq], "pos");
            auto [c, sn] = n::rotary_angles<dtype_of<f64>>(pos, g.constant(f32[n::freq.of<1>], std::vector<double>{0.5}));
            return weighted_sum(n::rotary(x, c, sn, 2, interleaved));
        }, {dims, {"x"}, {{"pos", {0, 1, 2, 3, 4, 5}}}});
    check_gradients("attention", [](graph& g) {
        auto q = g.parameter(f64[n::batch, n::seq, n::heads, n::head_dim], "q");
        auto k = g.parameter(f64[n::batch, n::keys, n::heads, n::head_dim], "k");
        auto v = g.parameter(f64[n::batch, n::keys, n::heads, n::head_dim], "v");
        return weighted_sum(n::attention(q, k, v, n::causal_mask(g)));
    }, {dims, {"q", "k", "v"}});
    check_gradients("grouped_attention", [](graph& g) {
        auto q = g.parameter(f64[n::batch, n::seq, n::heads, n::head_dim], "q");
        auto k = g.parameter(f64[n::batch, n::keys, n::kv_heads, n::head_dim], "k");
        auto v = g.parameter(f64[n::batch, n::keys, n::kv_heads, n::head_dim], "v");
        return weighted_sum(n::grouped_attention(q, k, v, n::causal_mask(g)));
    }, {dims, {"q", "k", "v"}});
    check_gradients("embedding", [](graph& g) {
        auto table = g.parameter(f64[n::vocab, n::hidden], "table");
        auto ids = g.parameter(s32[n::batch, n::seq], "ids");
        return weighted_sum(n::embedding(table, ids));
    }, {dims, {"table"}, {{"ids", {1, 4, 1, 0, 2, 1}}}});
}

TEST_CASE("cross_entropy is the mean negative log-likelihood of the unmasked labels, and its gradient is right") {
    namespace n = scribe::nn;
    auto dims = [](graph& g) { g.bind_if_used(n::batch(2), n::seq(3), n::vocab(5)); };
    const values labels{{"labels", {1, 4, 0, 2, -100, 3}}, {"mask", {1, 1, 0, 1, 0, 1}}};
    check_gradients("cross_entropy", [](graph& g) {
        auto logits = g.parameter(f64[n::batch, n::seq, n::vocab], "logits");
        return n::cross_entropy<n::vocab>(logits, g.parameter(s32[n::seq, n::batch], "labels"),
                                          ne(g.parameter(s32[n::batch, n::seq], "mask"), 0));
    }, {dims, {"logits"}, labels});

    // The value, against a loop over the same numbers.
    graph g("ce");
    dims(g);
    auto logits = g.parameter(f32[n::batch, n::seq, n::vocab], "logits");
    auto lab = g.parameter(s32[n::batch, n::seq], "labels");
    auto mask = g.parameter(pred[n::batch, n::seq], "mask");
    auto loss = n::cross_entropy<n::vocab>(logits, lab, mask);
    static_assert(std::is_same_v<decltype(loss), tensor<dtype_of<f32>>>);
    g.outputs(loss);
    std::vector<float> x(30);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(std::sin(1.7 * static_cast<double>(i)));
    std::vector<std::int32_t> l{1, 4, 0, 2, -100, 3};
    std::vector<std::uint8_t> m{1, 1, 0, 1, 0, 1};
    auto xa = cpu::array::borrow(dtype::f32, logits.shape(), x.data(), x.size() * 4);
    auto la = cpu::array::borrow(dtype::s32, lab.shape(), l.data(), l.size() * 4);
    auto ma = cpu::array::borrow(dtype::pred, mask.shape(), m.data(), m.size());
    const auto out = cpu::executor(g)({{"labels", la}, {"logits", xa}, {"mask", ma}});
    double want = 0;
    int count = 0;
    for (int p = 0; p < 6; ++p) {
        if (!m[static_cast<std::size_t>(p)]) continue;
        double z = 0;
        for (int c = 0; c < 5; ++c) z += std::exp(static_cast<double>(x[static_cast<std::size_t>(p * 5 + c)]));
        want += std::log(z) - x[static_cast<std::size_t>(p * 5 + l[static_cast<std::size_t>(p)])];
        ++count;
    }
    CHECK(out[0].values<float>()[0] == Approx(want / count).epsilon(1e-6));
}

TEST_CASE("mean_squared_error and its gradient") {
    check_gradients("mean_squared_error", [](graph& g) {
        return nn::mean_squared_error(g.parameter(f64[rows, cols], "a"), g.parameter(f64[cols, rows], "b"));
    }, {bind_small, {"a", "b"}});
}

TEST_CASE("grad gives each gradient its value's exact type, and value_and_grad the loss too") {
    graph g("types");
    bind_small(g);
    auto w = g.parameter(f32[rows, cols], "w");
    auto b = g.parameter(f32[cols], "b");
    auto x = g.parameter(f32[depth, rows], "x");
    auto y = dot<rows>(x, w);
    auto loss = sum_all(y + broadcast_to(b, y));
    auto dw = grad(loss, w);
    static_assert(std::is_same_v<decltype(dw), decltype(w)>);
    auto [gw, gb] = grad(loss, w, b);
    static_assert(std::is_same_v<decltype(gw), decltype(w)> && std::is_same_v<decltype(gb), decltype(b)>);
    auto [value, vw] = value_and_grad(loss, w);
    static_assert(std::is_same_v<decltype(value), decltype(loss)> && std::is_same_v<decltype(vw), decltype(w)>);
    CHECK(value.id() == loss.id());
    CHECK(gw.shape() == w.shape());
    // The gradient of an intermediate value: dL/dy is ones.
    auto dy = grad(loss, y);
    g.outputs(dw, gb, dy);
    std::vector<float> wv(12, 0.5f), bv(4, 1.f), xv(6, 2.f);
    auto wa = cpu::array::borrow(dtype::f32, w.shape(), wv.data(), 48);
    auto ba = cpu::array::borrow(dtype::f32, b.shape(), bv.data(), 16);
    auto xa = cpu::array::borrow(dtype::f32, x.shape(), xv.data(), 24);
    const auto out = cpu::executor(g)({{"b", ba}, {"w", wa}, {"x", xa}});
    for (float v : out[0].values<float>()) CHECK(v == 4.f);  // sum over depth of x = 2 * 2
    for (float v : out[1].values<float>()) CHECK(v == 2.f);  // depth
    for (float v : out[2].values<float>()) CHECK(v == 1.f);
}

TEST_CASE("stop_gradient passes the value and blocks the gradient") {
    graph g("frozen_copy");
    bind_small(g);
    auto x = g.parameter(f32[rows], "x");
    auto loss = sum_all(x * stop_gradient(x));  // d/dx = stop(x), not 2x
    g.outputs(loss, grad(loss, x));
    std::vector<float> xv{1, 2, 3};
    auto xa = cpu::array::borrow(dtype::f32, x.shape(), xv.data(), 12);
    const auto out = cpu::executor(g)({xa});
    CHECK(out[0].values<float>()[0] == 14.f);
    CHECK(out[1].values<float>()[1] == 2.f);
    CHECK(hlo::to_text(hlo::lower(g)).find("stop_gradient") == std::string::npos);  // no instruction in HLO
}

TEST_CASE("grad names the value when the loss does not depend on it or is not a scalar") {
    graph g("errors");
    bind_small(g);
    auto x = g.parameter(f32[rows], "x");
    auto unused = g.parameter(f32[rows], "unused_weight");
    auto through_argmax = g.parameter(f32[cols], "ranked");
    auto stopped = g.parameter(f32[rows], "frozen");
    auto loss = sum_all(x * x) + convert<f32>(argmax<cols>(through_argmax)) + sum_all(stop_gradient(stopped));
    CHECK_THROWS_WITH(grad(loss, unused), Catch::Contains("does not depend on parameter `unused_weight`"));
    CHECK_THROWS_WITH(grad(loss, through_argmax), Catch::Contains("parameter `ranked` only through ops without a gradient"));
    CHECK_THROWS_WITH(grad(loss, stopped), Catch::Contains("parameter `frozen` only through ops without a gradient"));
    // The untyped entry point checks what the types check at compile time.
    CHECK_THROWS_WITH(gradients(g, x.id(), {x.id()}), Catch::Contains("the loss must be a float scalar"));
    auto n = g.parameter(s32[rows], "count");
    CHECK_THROWS_WITH(gradients(g, loss.id(), {n.id()}), Catch::Contains("parameter `count` is s32"));
    auto later = g.parameter(f32[rows], "later");
    CHECK_THROWS_WITH(gradients(g, loss.id(), {later.id()}), Catch::Contains("made after the loss"));
}

namespace {

// A small tensor-parallel model with every parallel block: a vocab-parallel
// embedding, a replicated layer norm, a column- then row-parallel MLP, a
// vocab-parallel LM head, and the cross-entropy of the gathered logits. Its
// outputs are the loss and the gradient of every weight.
struct tp_model {
    struct weight {
        std::string name;
        shape dims;
        std::string split;
    };
    static std::vector<weight> weights() {
        return {{"emb", {{"vocab", 8}, {"hidden", 3}}, "vocab"}, {"gamma", {{"hidden", 3}}, ""}, {"beta", {{"hidden", 3}}, ""},
                {"w1", {{"hidden", 3}, {"ffn", 4}}, "ffn"},        {"b1", {{"ffn", 4}}, "ffn"},       {"w2", {{"ffn", 4}, {"hidden", 3}}, "ffn"},
                {"b2", {{"hidden", 3}}, ""},                        {"head", {{"vocab", 8}, {"hidden", 3}}, "vocab"}};
    }
    static graph build(std::int64_t degree) {
        namespace n = scribe::nn;
        graph g("tp" + std::to_string(degree));
        const parallel::mesh m{.degree = degree};
        g.bind(n::batch(2), n::seq(3), n::hidden(3), n::vocab(8 / degree), n::ffn(4 / degree));
        auto emb = g.parameter(f64[n::vocab, n::hidden], "emb");
        auto gamma = g.parameter(f64[n::hidden], "gamma");
        auto beta = g.parameter(f64[n::hidden], "beta");
        auto w1 = g.parameter(f64[n::hidden, n::ffn], "w1");
        auto b1 = g.parameter(f64[n::ffn], "b1");
        auto w2 = g.parameter(f64[n::ffn, n::hidden], "w2");
        auto b2 = g.parameter(f64[n::hidden], "b2");
        auto head = g.parameter(f64[n::vocab, n::hidden], "head");
        auto ids = g.parameter(s32[n::batch, n::seq], "ids");
        auto labels = g.parameter(s32[n::batch, n::seq], "labels");
        auto x = parallel::embedding(emb, ids, m);
        auto h = n::layer_norm<n::hidden>(x, gamma, beta, 1e-5);
        x = x + parallel::mlp(h, w1, b1, w2, b2, [](const auto& u) { return n::gelu(u); }, m);
        auto logits = parallel::lm_head(x, head, 8, m);
        auto loss = n::cross_entropy<n::vocab>(logits, labels, ge(labels, 0));
        std::vector<node_id> wrt, varying;
        for (const auto& w : weights()) {
            wrt.push_back(*g.find_parameter(w.name));
            if (!w.split.empty() && degree > 1) varying.push_back(wrt.back());
        }
        auto grads = gradients(g, loss.id(), wrt, spmd{.varying = varying, .replica_groups = {}});
        grads.insert(grads.begin(), loss.id());
        g.set_outputs(grads);
        return g;
    }
};

}  // namespace

TEST_CASE("gradients of a tensor-parallel model at TP 2 and 4 are TP 1's, sharded like the weights") {
    std::mt19937 rng(11);
    std::normal_distribution<double> normal;
    std::map<std::string, cpu::array> full;
    for (const auto& w : tp_model::weights()) {
        cpu::array a(dtype::f64, w.dims);
        auto* v = reinterpret_cast<double*>(a.mutable_data());
        for (std::int64_t i = 0; i < a.size(); ++i) v[i] = normal(rng);
        full.emplace(w.name, std::move(a));
    }
    std::vector<std::int32_t> ids{0, 7, 3, 5, 5, 1}, labels{7, 3, -1, 5, 1, 2};
    const shape bs{{"batch", 2}, {"seq", 3}};
    auto ids_a = cpu::array::borrow(dtype::s32, bs, ids.data(), 24);
    auto labels_a = cpu::array::borrow(dtype::s32, bs, labels.data(), 24);

    auto run = [&](std::int64_t degree) {
        const auto g = tp_model::build(degree);
        std::vector<std::vector<cpu::array>> shards(static_cast<std::size_t>(degree));
        std::vector<std::vector<cpu::input>> in(static_cast<std::size_t>(degree));
        static const auto weights = tp_model::weights();  // an input names its parameter by a view of this string
        for (std::int64_t r = 0; r < degree; ++r) {
            auto& mine = shards[static_cast<std::size_t>(r)];
            mine.reserve(8);
            for (const auto& w : weights) {
                mine.push_back(parallel::shard(full.at(w.name), w.split, degree, r));
                in[static_cast<std::size_t>(r)].push_back({w.name, mine.back()});
            }
            in[static_cast<std::size_t>(r)].push_back({"ids", ids_a});
            in[static_cast<std::size_t>(r)].push_back({"labels", labels_a});
        }
        return cpu::executor(g).run_replicas(in);
    };
    const auto one = run(1);
    for (std::int64_t degree : {2, 4}) {
        INFO("TP " << degree);
        const auto many = run(degree);
        for (std::int64_t r = 0; r < degree; ++r) {
            const auto& mine = many[static_cast<std::size_t>(r)];
            CHECK(mine[0].values<double>()[0] == Approx(one[0][0].values<double>()[0]).epsilon(1e-12));
            const auto ws = tp_model::weights();
            for (std::size_t k = 0; k < ws.size(); ++k) {
                INFO("rank " << r << ", gradient of " << ws[k].name);
                const auto want = parallel::shard(one[0][k + 1], ws[k].split, degree, r);
                const auto a = mine[k + 1].values<double>();
                const auto b = want.values<double>();
                REQUIRE(a.size() == b.size());
                for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-10).margin(1e-12));
            }
        }
    }
}

TEST_CASE("the backward pass recomputes element-wise chains and adds a gather's gradient into the other share") {
    // loss = cross_entropy(gelu_tanh(x . w)) over depth as the classes. Without
    // recomputation the GELU chain keeps six [rows, depth] values for the backward
    // pass, and the gather of the picked logits adds a buffer of zeros and a sum.
    namespace n = scribe::nn;
    constexpr std::int64_t R = 96, C = 16, D = 512;
    graph g("gelu_ce");
    g.bind(rows(R), cols(C), depth(D));
    auto x = g.parameter(f32[rows, cols], "x");
    auto w = g.parameter(f32[cols, depth], "w");
    auto labels = g.parameter(s32[rows], "labels");
    auto mask = g.parameter(pred[rows], "mask");
    auto h = dot<cols>(x, w);
    auto loss = n::cross_entropy<depth>(n::gelu_tanh(h), labels, mask);
    auto grads = gradients(g, loss.id(), {w.id()});
    g.set_outputs({loss.id(), grads[0]});
    std::vector<float> xs(R * C), ws(C * D);
    for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)));
    for (std::size_t i = 0; i < ws.size(); ++i) ws[i] = static_cast<float>(0.5 * std::cos(0.11 * static_cast<double>(i)));
    std::vector<std::int32_t> ls(R);
    std::vector<std::uint8_t> ms(R);
    for (std::size_t r = 0; r < R; ++r) {
        ls[r] = static_cast<std::int32_t>((r * 37) % D);
        ms[r] = r % 7 != 3;
    }
    cpu::executor ex(g, {.threads = 2});
    const auto out = ex({{"x", cpu::array::borrow(dtype::f32, x.shape(), xs.data(), xs.size() * 4)},
                         {"w", cpu::array::borrow(dtype::f32, w.shape(), ws.data(), ws.size() * 4)},
                         {"labels", cpu::array::borrow(dtype::s32, labels.shape(), ls.data(), ls.size() * 4)},
                         {"mask", cpu::array::borrow(dtype::pred, mask.shape(), ms.data(), ms.size())}});
    // The gradient, in double on the host: dL/dh = (softmax(y) - onehot) gelu'(h) / count.
    constexpr double k = 0.7978845608028654, a = 0.044715;
    std::vector<double> dh(R * D, 0.0);
    double count = 0;
    for (std::size_t r = 0; r < R; ++r) count += ms[r];
    for (std::size_t r = 0; r < R; ++r) {
        if (!ms[r]) continue;
        std::vector<double> hv(D), y(D);
        double top = -1e300, z = 0;
        for (std::size_t d = 0; d < D; ++d) {
            for (std::size_t c = 0; c < C; ++c) hv[d] += static_cast<double>(xs[r * C + c]) * ws[c * D + d];
            y[d] = 0.5 * hv[d] * (1 + std::tanh(k * (hv[d] + a * hv[d] * hv[d] * hv[d])));
            top = std::max(top, y[d]);
        }
        for (std::size_t d = 0; d < D; ++d) z += std::exp(y[d] - top);
        for (std::size_t d = 0; d < D; ++d) {
            const double t = std::tanh(k * (hv[d] + a * hv[d] * hv[d] * hv[d]));
            const double gelu_d = 0.5 * (1 + t) + 0.5 * hv[d] * (1 - t * t) * k * (1 + 3 * a * hv[d] * hv[d]);
            const double dy = (std::exp(y[d] - top) / z - (static_cast<std::int32_t>(d) == ls[r] ? 1.0 : 0.0)) / count;
            dh[r * D + d] = dy * gelu_d;
        }
    }
    double worst = 0, largest = 0;
    for (std::size_t c = 0; c < C; ++c)
        for (std::size_t d = 0; d < D; ++d) {
            double want = 0;
            for (std::size_t r = 0; r < R; ++r) want += static_cast<double>(xs[r * C + c]) * dh[r * D + d];
            worst = std::max(worst, std::abs(out[1].values<float>()[c * D + d] - want));
            largest = std::max(largest, std::abs(want));
        }
    INFO("largest gradient " << largest << ", worst error " << worst);
    CHECK(worst < 1e-6 + 1e-4 * largest);
    // At most three [rows, depth] values live at once (h, the GELU, its
    // exponentials), where keeping each op's value for the backward pass held
    // seven.
    const auto value = static_cast<std::size_t>(R * D * 4);
    INFO("planned peak " << ex.planned_peak_bytes() << " bytes, a [rows, depth] value is " << value);
    CHECK(ex.planned_peak_bytes() <= 3 * value + value / 2);
    CHECK(ex.stats().peak_bytes <= 3 * value + value / 2 + 2 * static_cast<std::size_t>(C * D * 4));
}

TEST_CASE("a training step frees each activation after its last reader, backward ones included") {
    // Eight tanh layers: the forward activations are read again by the backward
    // pass, which runs in reverse, so at most about half of them (plus the
    // gradients) are live at once; an executor that freed nothing would hold all.
    graph g("deep");
    g.bind(rows(64), cols(64));
    auto x = g.parameter(f32[rows, cols], "x");
    g.bind(depth(64));
    auto h = x;
    std::vector<node_id> wrt;
    for (int l = 0; l < 8; ++l) {
        auto w = g.parameter(f32[cols, depth], "w" + std::to_string(l));
        wrt.push_back(w.id());
        h = rename<depth, cols>(tanh(dot<cols>(h, w)));
    }
    auto loss = sum_all(h * h);
    auto grads = gradients(g, loss.id(), wrt);
    grads.insert(grads.begin(), loss.id());
    g.set_outputs(grads);
    std::vector<cpu::array> in;
    in.push_back(cpu::array(dtype::f32, {{"cols", 64}, {"depth", 64}}));  // w0..w7 (zeros), then x
    for (int l = 1; l < 8; ++l) in.push_back(cpu::array(dtype::f32, {{"cols", 64}, {"depth", 64}}));
    in.push_back(cpu::array(dtype::f32, {{"rows", 64}, {"cols", 64}}));
    cpu::executor ex(g);
    (void)ex(std::span<const cpu::array>(in));
    const auto& st = ex.stats();
    INFO("peak " << st.peak_bytes << " of " << st.allocated_bytes << " bytes made");
    CHECK(st.allocated_bytes > 0);
    CHECK(st.peak_bytes * 2 < st.allocated_bytes);
}

}  // namespace test_grad
