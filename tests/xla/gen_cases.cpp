// Writes the XLA conformance cases: for every op (several shapes, every dtype it
// supports) a graph exported as <name>.hlo and <name>.pb, and cases.json saying
// what each computes in named terms. test_conformance.py runs both files with XLA
// and compares with its own NumPy reference of that description, and with the
// CPU backend's result for the same graph and inputs.
//
// Usage: gen_cases OUTPUT_DIR        export the cases
//        gen_cases --cpu DIR         run every case on the CPU backend: reads
//                                    DIR/inputs/<case>/r<R>_<K>.bin, writes
//                                    DIR/cpu/<case>/r<R>_<K>.bin (raw row-major bytes)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <scribe/cpu.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);
SCRIBE_DIM(batch);
SCRIBE_DIM(vocab);
SCRIBE_DIM(heads);
SCRIBE_DIM(head_dim);
SCRIBE_DIM(out);
SCRIBE_DIM(step);
SCRIBE_DIM(rows);
SCRIBE_DIM(cols);

using namespace scribe;
using json = nlohmann::json;

namespace {

std::filesystem::path out_dir;
bool cpu_mode = false;
json cases = json::array();

std::vector<char> read_file(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) throw scribe::error("gen_cases: cannot read " + p.string());
    return {std::istreambuf_iterator<char>(f), {}};
}

// Runs g on the CPU backend with the inputs the Python side wrote for this case.
cpu::array copy_of(const cpu::array& a) {
    auto c = cpu::array::uninitialized(a.type(), a.dims());
    if (a.bytes()) std::memcpy(c.mutable_data(), a.data(), a.bytes());
    return c;
}

void run_on_cpu(const std::string& name, const graph& g, int replicas) {
    const auto in_dir = out_dir / "inputs" / name;
    const auto res_dir = out_dir / "cpu" / name;
    std::filesystem::create_directories(res_dir);
    std::vector<std::vector<char>> storage;
    std::vector<std::vector<cpu::array>> inputs(static_cast<std::size_t>(replicas));
    storage.reserve(static_cast<std::size_t>(replicas * g.parameter_count()));
    for (int r = 0; r < replicas; ++r)
        for (auto id : g.parameters()) {  // in parameter-number order
            const auto& n = g[id];
            storage.push_back(read_file(in_dir / ("r" + std::to_string(r) + "_" + std::to_string(n.parameter_number) + ".bin")));
            inputs[static_cast<std::size_t>(r)].push_back(
                cpu::array::borrow(n.type, n.dims, storage.back().data(), storage.back().size()));
        }
    std::vector<std::vector<cpu::array>> outs;
    if (replicas == 1 && !g.aliases().empty()) {  // the aliased inputs donated: updated in place
        std::vector<cpu::array> owned;
        for (const auto& a : inputs[0]) owned.push_back(cpu::array(a.view().borrowed() ? copy_of(a) : a));
        outs.push_back(cpu::executor(g).run_donating(std::move(owned)));
    } else {
        outs = cpu::executor(g).run_replicas(inputs);
    }
    for (int r = 0; r < replicas; ++r)
        for (std::size_t k = 0; k < outs[static_cast<std::size_t>(r)].size(); ++k) {
            const auto& a = outs[static_cast<std::size_t>(r)][k];
            std::ofstream(res_dir / ("r" + std::to_string(r) + "_" + std::to_string(k) + ".bin"), std::ios::binary)
                .write(reinterpret_cast<const char*>(a.data()), static_cast<std::streamsize>(a.bytes()));
        }
}

json shape_json(const shape& s) {
    json j = json::array();
    for (const auto& d : s) j.push_back({{"name", d.name}, {"extent", d.extent}});
    return j;
}

// Exports g and records the case. `op` describes the computation for the reference;
// `domains` gives an input's value range where the op needs one ("positive",
// "nonzero", [lo, hi] for integers or indices).
void record(const std::string& name, const graph& g, json op, json domains = json::object(), int replicas = 1) {
    if (cpu_mode) {
        run_on_cpu(name, g, replicas);
        return;
    }
    hlo::write(g, out_dir, name);
    json inputs = json::array();
    // In the order the case made them (the reference reads them so), each with the
    // number XLA takes it by (the order of the names).
    for (const auto& n : g.nodes())
        if (n.kind == scribe::op::parameter)
            inputs.push_back({{"name", n.label}, {"number", n.parameter_number}, {"dtype", std::string(scribe::name(n.type))},
                              {"dims", shape_json(n.dims)}});
    json outputs = json::array();
    for (auto id : g.outputs())
        outputs.push_back({{"dtype", std::string(scribe::name(g[id].type))}, {"dims", shape_json(g[id].dims)}});
    cases.push_back({{"name", name}, {"op", std::move(op)}, {"inputs", inputs}, {"outputs", outputs},
                     {"domains", std::move(domains)}, {"replicas", replicas}});
}

graph make(const std::string& name) {
    graph g(name);
    g.bind_if_used(hidden(6), tokens(5), batch(3), vocab(7), heads(2), head_dim(3), out(4), step(2));
    return g;
}

// Runs f once per dtype tag.
template <class F, class... T>
void each(F&& f, T... tags) {
    (f(tags), ...);
}

std::string dn(auto tag) { return std::string(decltype(tag)::name()); }

void parameters_and_constants() {
    each([](auto t) {
        auto g = make("parameter_" + dn(t));
        g.outputs(g.parameter(t[hidden, tokens], "x"));
        record("parameter_" + dn(t), g, {{"kind", "identity"}});
    }, pred, s8, u8, s32, s64, u32, f16, bf16, f32, f64);

    each([](auto t) {
        const std::string nm = dn(t);
        std::vector<double> vals;
        if (nm == "pred") vals = {0, 1, 1, 0, 1, 0};
        else if (nm == "u8" || nm == "u32") vals = {0, 1, 7, 200, 3, 42};
        else if (is_float(decltype(t)::id)) vals = {-2.5, 0, 1.25, 3, -0.75, 1024};
        else vals = {-3, 0, 7, 100, -128, 5};
        auto g = make("constant_" + nm);
        auto c = g.constant(t[rows.of<2>, cols.of<3>], vals);
        auto s = g.constant(t, vals[3]);
        g.outputs(c, s);
        record("constant_" + nm, g, {{"kind", "constant"}, {"values", vals}});
    }, pred, s8, u8, s32, s64, u32, f16, bf16, f32, f64);

    each([](auto t) {
        auto g = make("iota_" + dn(t));
        g.outputs(g.iota(t[tokens, batch], batch), g.iota(t[hidden, tokens, batch], tokens));
        record("iota_" + dn(t), g, {{"kind", "iota"}});
    }, s32, s64, u32, u8, f16, bf16, f32, f64);
}

void converts() {
    auto conv = [](auto from, auto to, json domain) {
        const std::string nm = "convert_" + dn(from) + "_to_" + dn(to);
        auto g = make(nm);
        auto x = g.parameter(from[hidden, tokens], "x");
        g.outputs(convert<decltype(to){}>(x));
        record(nm, g, {{"kind", "convert"}}, {{"x", domain}});
    };
    conv(f32, f16, "any");
    conv(f32, bf16, "any");
    conv(f16, f32, "any");
    conv(bf16, f32, "any");
    conv(f32, f64, "any");
    conv(f64, f32, "any");
    conv(f32, s32, "any");
    conv(s32, f32, "any");
    conv(s8, s32, "any");
    conv(u8, f32, "any");
    conv(pred, s32, "any");
    conv(s32, pred, "any");
    conv(f32, u32, "positive");
    conv(s64, f64, "any");
    conv(bf16, f16, "any");

    // bitcast_convert: the same bits as another dtype of the width. Integer inputs
    // span their whole range, so the floats they make are of every kind.
    auto cast = [](auto from, auto to, json domain) {
        const std::string nm = "bitcast_convert_" + dn(from) + "_to_" + dn(to);
        auto g = make(nm);
        auto x = g.parameter(from[hidden, tokens], "x");
        g.outputs(bitcast_convert<decltype(to){}>(x));
        record(nm, g, {{"kind", "bitcast_convert"}}, {{"x", domain}});
    };
    const json s32_range = json::array({-(std::int64_t{1} << 31), (std::int64_t{1} << 31) - 1});
    const json u32_range = json::array({0, (std::int64_t{1} << 32) - 1});
    cast(f32, u32, "any");
    cast(f32, s32, "any");
    cast(u32, f32, u32_range);
    cast(s32, f32, s32_range);
    cast(s32, u32, s32_range);
    cast(u32, s32, u32_range);
    cast(f64, s64, "any");
    cast(s64, f64, json::array({-(std::int64_t{1} << 62), std::int64_t{1} << 62}));
    cast(s8, u8, json::array({-128, 127}));
    cast(u8, s8, json::array({0, 255}));
    cast(f16, bf16, "any");
    cast(bf16, f16, "any");
}

template <op K, bool FloatsOnly, class F>
void unary_case(const char* name, F f) {
    each([&](auto t) {
        if constexpr (FloatDtype<decltype(t)>) {
            const std::string nm = std::string(name) + "_" + dn(t);
            auto g = make(nm);
            g.outputs(f(g.parameter(t[hidden, tokens, batch], "x")));
            const bool pos = K == op::log || K == op::sqrt || K == op::rsqrt;
            // sign sees zeros among small integers; log1p's domain is above -1.
            const json dom = K == op::sign ? json::array({-3, 3}) : K == op::log1p ? json("above_minus_one") : json(pos ? "positive" : "any");
            record(nm, g, {{"kind", "unary"}, {"fn", name}}, {{"x", dom}});
        }
    }, f16, bf16, f32, f64);
    if constexpr (!FloatsOnly)
        each([&](auto t) {
            if constexpr (!FloatDtype<decltype(t)>) {
                const std::string nm = std::string(name) + "_" + dn(t);
                auto g = make(nm);
                g.outputs(f(g.parameter(t[hidden, tokens], "x")));
                record(nm, g, {{"kind", "unary"}, {"fn", name}});
            }
        }, s8, s32, s64);
}

void unaries() {
    unary_case<op::neg, false>("neg", [](auto x) { return -x; });
    unary_case<op::abs, false>("abs", [](auto x) { return abs(x); });
    unary_case<op::sign, false>("sign", [](auto x) { return sign(x); });
    unary_case<op::exp, true>("exp", [](auto x) { return exp(x); });
    unary_case<op::expm1, true>("expm1", [](auto x) { return expm1(x); });
    unary_case<op::log, true>("log", [](auto x) { return log(x); });
    unary_case<op::log1p, true>("log1p", [](auto x) { return log1p(x); });
    unary_case<op::sqrt, true>("sqrt", [](auto x) { return sqrt(x); });
    unary_case<op::rsqrt, true>("rsqrt", [](auto x) { return rsqrt(x); });
    unary_case<op::tanh, true>("tanh", [](auto x) { return tanh(x); });
    unary_case<op::logistic, true>("logistic", [](auto x) { return logistic(x); });
    unary_case<op::sin, true>("sin", [](auto x) { return sin(x); });
    unary_case<op::cos, true>("cos", [](auto x) { return cos(x); });
    unary_case<op::erf, true>("erf", [](auto x) { return erf(x); });
    unary_case<op::floor, true>("floor", [](auto x) { return floor(x); });
}

void binaries() {
    auto bin = [](const char* name, auto f, auto t, json domains) {
        const std::string nm = std::string(name) + "_" + dn(t);
        {
            auto g = make(nm);
            auto a = g.parameter(t[hidden, tokens, batch], "a");
            auto b = g.parameter(t[hidden, tokens, batch], "b");
            g.outputs(f(a, b));
            record(nm, g, {{"kind", "binary"}, {"fn", name}}, domains);
        }
        {  // rhs in another order: aligned by name
            auto g = make(nm + "_aligned");
            auto a = g.parameter(t[hidden, tokens, batch], "a");
            auto b = g.parameter(t[batch, hidden, tokens], "b");
            g.outputs(f(a, b));
            record(nm + "_aligned", g, {{"kind", "binary"}, {"fn", name}}, domains);
        }
        {  // rank-0 operand broadcasts
            auto g = make(nm + "_scalar");
            auto a = g.parameter(t[tokens, batch], "a");
            auto b = g.parameter(t[], "b");
            g.outputs(f(a, b));
            record(nm + "_scalar", g, {{"kind", "binary"}, {"fn", name}}, domains);
        }
    };
    auto floats = [&](const char* name, auto f, json domains) {
        each([&](auto t) { bin(name, f, t, domains); }, f16, bf16, f32, f64);
    };
    auto ints = [&](const char* name, auto f, json domains) {
        each([&](auto t) { bin(name, f, t, domains); }, s8, u8, s32, s64, u32);
    };
    auto addf = [](auto a, auto b) { return a + b; };
    auto subf = [](auto a, auto b) { return a - b; };
    auto mulf = [](auto a, auto b) { return a * b; };
    auto divf = [](auto a, auto b) { return a / b; };
    auto maxf = [](auto a, auto b) { return maximum(a, b); };
    auto minf = [](auto a, auto b) { return minimum(a, b); };
    auto powf = [](auto a, auto b) { return pow(a, b); };
    floats("add", addf, json::object());
    ints("add", addf, json::object());
    floats("subtract", subf, json::object());
    ints("subtract", subf, {{"a", json::array({20, 40})}, {"b", json::array({0, 20})}});
    floats("multiply", mulf, json::object());
    ints("multiply", mulf, json::object());
    floats("divide", divf, {{"b", "nonzero"}});
    ints("divide", divf, {{"a", json::array({0, 100})}, {"b", json::array({1, 9})}});
    floats("maximum", maxf, json::object());
    ints("maximum", maxf, json::object());
    floats("minimum", minf, json::object());
    ints("minimum", minf, json::object());
    floats("power", powf, {{"a", "positive"}});
    each([&](auto t) { bin("power", powf, t, {{"a", json::array({0, 4})}, {"b", json::array({0, 3})}}); }, s32, s64);

    // Bitwise ops on bit patterns over the whole range of each width; shift
    // amounts from below 0 (read as unsigned: out of range) to past the width.
    auto full_range = [](auto t) {
        constexpr dtype id = decltype(t)::id;
        constexpr int bits = info(id).bytes * 8;
        if constexpr (id == dtype::s64) return json::array({-(std::int64_t{1} << 62), std::int64_t{1} << 62});
        else if constexpr (!info(id).is_signed) return json::array({0, (std::int64_t{1} << bits) - 1});
        else return json::array({-(std::int64_t{1} << (bits - 1)), (std::int64_t{1} << (bits - 1)) - 1});
    };
    auto bits_and_amounts = [&](auto t) {
        const int bits = info(decltype(t)::id).bytes * 8;
        return json{{"a", full_range(t)}, {"b", json::array({info(decltype(t)::id).is_signed ? -2 : 0, bits + 2})}};
    };
    auto andf = [](auto a, auto b) { return bitwise_and(a, b); };
    auto orf = [](auto a, auto b) { return a | b; };
    auto xorf = [](auto a, auto b) { return bitwise_xor(a, b); };
    auto shlf = [](auto a, auto b) { return shift_left(a, b); };
    auto srlf = [](auto a, auto b) { return shift_right_logical(a, b); };
    auto sraf = [](auto a, auto b) { return shift_right_arithmetic(a, b); };
    each([&](auto t) {
        const json patterns{{"a", full_range(t)}, {"b", full_range(t)}};
        bin("bitwise_and", andf, t, patterns);
        bin("bitwise_or", orf, t, patterns);
        bin("bitwise_xor", xorf, t, patterns);
        bin("shift_left", shlf, t, bits_and_amounts(t));
        bin("shift_right_logical", srlf, t, bits_and_amounts(t));
        bin("shift_right_arithmetic", sraf, t, bits_and_amounts(t));
        const std::string nm = "bitwise_not_" + dn(t);
        auto g = make(nm);
        g.outputs(bitwise_not(g.parameter(t[hidden, tokens], "x")));
        record(nm, g, {{"kind", "unary"}, {"fn", "bitwise_not"}}, {{"x", full_range(t)}});
    }, s8, u8, s32, s64, u32);
    bin("bitwise_and", andf, pred, json::object());
    bin("bitwise_or", orf, pred, json::object());
    bin("bitwise_xor", xorf, pred, json::object());
    {
        auto g = make("bitwise_not_pred");
        g.outputs(~g.parameter(pred[hidden, tokens], "x"));
        record("bitwise_not_pred", g, {{"kind", "unary"}, {"fn", "bitwise_not"}});
    }

    // A C++ number becomes a scalar of the tensor's dtype.
    each([](auto t) {
        const std::string nm = "number_operands_" + dn(t);
        auto g = make(nm);
        auto x = g.parameter(t[hidden, tokens], "x");
        g.outputs((x * 0.5 + 1.0) / 2.0 - 3.0 * x);
        record(nm, g, {{"kind", "expression"}, {"fn", "number_operands"}});
    }, f32, bf16, f64);
    // ... in the named binary functions and compares too, on either side.
    each([](auto t) {
        const std::string nm = "number_functions_" + dn(t);
        auto g = make(nm);
        auto x = g.parameter(t[hidden, tokens], "x");
        g.outputs(maximum(x, 0.0), minimum(0.5, x), pow(abs(x), 2), pow(2.0, x), lt(x, 0.25), ge(1, x));
        record(nm, g, {{"kind", "expression"}, {"fn", "number_functions"}});
    }, f32, bf16, f64);
    each([](auto t) {
        const std::string nm = "number_functions_" + dn(t);
        auto g = make(nm);
        auto x = g.parameter(t[hidden, tokens], "x");
        g.outputs(maximum(x, 0), minimum(3, x), pow(x, 2), subtract(10, x), eq(x, 2), ne(1, x));
        record(nm, g, {{"kind", "expression"}, {"fn", "number_functions_int"}}, {{"x", json::array({0, 6})}});
    }, s32, s64);
}

void compares_and_selects() {
    const char* dirs[] = {"EQ", "NE", "LT", "LE", "GT", "GE"};
    each([&](auto t) {
        for (int d = 0; d < 6; ++d) {
            const std::string nm = std::string("compare_") + dirs[d] + "_" + dn(t);
            auto g = make(nm);
            auto a = g.parameter(t[hidden, tokens], "a");
            auto b = g.parameter(t[tokens, hidden], "b");
            auto r = [&] {
                switch (d) {
                    case 0: return eq(a, b);
                    case 1: return ne(a, b);
                    case 2: return lt(a, b);
                    case 3: return le(a, b);
                    case 4: return gt(a, b);
                    default: return ge(a, b);
                }
            }();
            g.outputs(r);
            // Small integers make equal elements likely, so EQ and the tie cases are exercised.
            record(nm, g, {{"kind", "compare"}, {"direction", dirs[d]}},
                   {{"a", json::array({0, 3})}, {"b", json::array({0, 3})}});
        }
    }, s8, u8, s32, s64, u32, f16, bf16, f32, f64);
    each([](auto t) {
        const std::string nm = "select_" + dn(t);
        auto g = make(nm);
        auto p = g.parameter(pred[tokens, hidden], "p");
        auto a = g.parameter(t[hidden, tokens], "a");
        auto b = g.parameter(t[hidden, tokens], "b");
        g.outputs(select(p, a, b));
        record(nm, g, {{"kind", "select"}});
    }, pred, s8, u8, s32, s64, u32, f16, bf16, f32, f64);
}

void layouts() {
    each([](auto t) {
        const std::string s = dn(t);
        {
            auto g = make("broadcast_" + s);
            auto x = g.parameter(t[hidden], "x");
            g.outputs(broadcast<tokens, batch>(x));
            record("broadcast_" + s, g, {{"kind", "broadcast"}});
        }
        {
            auto g = make("broadcast_to_" + s);
            auto x = g.parameter(t[batch, hidden], "x");
            auto like = g.parameter(t[hidden, tokens, batch], "like");
            g.outputs(broadcast_to(x, like));
            record("broadcast_to_" + s, g, {{"kind", "broadcast"}});
        }
        {
            auto g = make("transpose_" + s);
            auto x = g.parameter(t[hidden, tokens, batch], "x");
            g.outputs(transpose<batch, hidden, tokens>(x), transpose<tokens, batch>(g.parameter(t[batch, tokens], "y")));
            record("transpose_" + s, g, {{"kind", "transpose"}});
        }
        {
            auto g = make("rename_" + s);
            auto x = g.parameter(t[hidden, tokens], "x");
            g.outputs(rename<hidden, out>(rename<hidden, hidden>(x)));
            record("rename_" + s, g, {{"kind", "rename"}, {"from", "hidden"}, {"to", "out"}});
        }
        {
            auto g = make("split_" + s);
            auto x = g.parameter(t[tokens, hidden, batch], "x");
            g.outputs(split<hidden, heads, head_dim>(x));
            record("split_" + s, g, {{"kind", "split"}, {"from", "hidden"}, {"into", {"heads", "head_dim"}}});
        }
        {
            auto g = make("merge_" + s);
            auto x = g.parameter(t[head_dim, tokens, heads], "x");
            g.outputs(merge<heads, head_dim, hidden>(x));
            record("merge_" + s, g, {{"kind", "merge"}, {"from", {"heads", "head_dim"}}, {"into", "hidden"}});
        }
    }, pred, s8, u8, s32, s64, u32, f16, bf16, f32, f64);
}

void dots() {
    each([](auto t) {
        const std::string s = dn(t);
        {
            auto g = make("dot_matmul_" + s);
            auto w = g.parameter(t[hidden, vocab], "w");
            auto h = g.parameter(t[hidden, tokens, batch], "h");
            g.outputs(dot<hidden>(w, h));
            record("dot_matmul_" + s, g, {{"kind", "dot"}, {"contract", {"hidden"}}});
        }
        {
            auto g = make("dot_batched_" + s);
            auto q = g.parameter(t[head_dim, tokens, heads, batch], "q");
            auto k = g.parameter(t[batch, heads, head_dim, vocab], "k");
            g.outputs(dot<head_dim, batched<batch, heads>>(q, k));
            record("dot_batched_" + s, g, {{"kind", "dot"}, {"contract", {"head_dim"}}});
        }
        {
            auto g = make("dot_two_contracting_" + s);
            auto a = g.parameter(t[heads, head_dim, tokens], "a");
            auto b = g.parameter(t[out, head_dim, heads], "b");
            g.outputs(dot<heads, head_dim>(a, b));
            record("dot_two_contracting_" + s, g, {{"kind", "dot"}, {"contract", {"heads", "head_dim"}}});
        }
        {
            auto g = make("dot_vector_" + s);
            auto a = g.parameter(t[hidden], "a");
            auto b = g.parameter(t[hidden], "b");
            g.outputs(dot<hidden>(a, b));
            record("dot_vector_" + s, g, {{"kind", "dot"}, {"contract", {"hidden"}}});
        }
    }, f32, f16, bf16, f64, s32);
}

void reductions() {
    each([](auto t) {
        const std::string s = dn(t);
        auto g = make("reduce_" + s);
        auto x = g.parameter(t[hidden, tokens, batch], "x");
        g.outputs(reduce_sum<tokens>(x), reduce_max<hidden, batch>(x), reduce_min<batch>(x),
                  reduce_sum<hidden, tokens, batch>(x));
        record("reduce_" + s, g, {{"kind", "reduce"},
                                  {"parts", {{{"fn", "sum"}, {"dims", {"tokens"}}},
                                             {{"fn", "max"}, {"dims", {"hidden", "batch"}}},
                                             {{"fn", "min"}, {"dims", {"batch"}}},
                                             {{"fn", "sum"}, {"dims", {"hidden", "tokens", "batch"}}}}}});
    }, f32, f16, bf16, f64, s8, u8, s32, s64, u32);
    each([](auto t) {
        const std::string s = dn(t);
        auto g = make("mean_" + s);
        auto x = g.parameter(t[hidden, tokens, batch], "x");
        g.outputs(mean<hidden>(x), mean<tokens, batch>(x));
        record("mean_" + s, g, {{"kind", "reduce"},
                                {"parts", {{{"fn", "mean"}, {"dims", {"hidden"}}},
                                           {{"fn", "mean"}, {"dims", {"tokens", "batch"}}}}}});
    }, f16, bf16, f32, f64);
    each([](auto t) {
        const std::string s = dn(t);
        auto g = make("argmax_" + s);
        auto x = g.parameter(t[vocab, tokens, batch], "x");
        g.outputs(argmax<vocab>(x), argmax<tokens>(x));
        // Few distinct values: ties, which must resolve to the first index.
        record("argmax_" + s, g, {{"kind", "argmax"}, {"dims", {"vocab", "tokens"}}}, {{"x", json::array({0, 5})}});
    }, s8, u8, s32, s64, u32, f16, bf16, f32, f64);
    each([](auto t) {
        const std::string s = dn(t);
        auto g = make("softmax_" + s);
        auto x = g.parameter(t[vocab, tokens, batch], "x");
        g.outputs(softmax<vocab>(x), log_softmax<vocab>(x), softmax<tokens>(x * 4.0));
        record("softmax_" + s, g, {{"kind", "softmax"}});
    }, f32, f16, bf16, f64);
}

void slicing_ops() {
    each([](auto t) {
        const std::string s = dn(t);
        {
            auto g = make("slice_" + s);
            auto x = g.parameter(t[hidden, tokens, batch], "x");
            g.outputs(slice<tokens>(x, 1, 4), slice<hidden>(slice<batch>(x, 2, 3), 0, 6));
            record("slice_" + s, g, {{"kind", "slice"}, {"parts", {{{"dim", "tokens"}, {"start", 1}, {"limit", 4}},
                                                                  {{"chain", {{{"dim", "batch"}, {"start", 2}, {"limit", 3}},
                                                                              {{"dim", "hidden"}, {"start", 0}, {"limit", 6}}}}}}}});
        }
        {
            auto g = make("dynamic_slice_" + s);
            auto x = g.parameter(t[hidden, tokens, batch], "x");
            auto at = g.parameter(s32[], "start");
            g.outputs(dynamic_slice<tokens>(x, at, 2));
            record("dynamic_slice_" + s, g, {{"kind", "dynamic_slice"}, {"dim", "tokens"}, {"size", 2}},
                   {{"start", json::array({-1, 6})}});
        }
        {
            auto g = make("dynamic_update_slice_" + s);
            auto x = g.parameter(t[hidden, tokens, batch], "cache");
            auto u = rename<step, tokens>(g.parameter(t[batch, hidden, step], "update"));
            auto at = g.parameter(s32[], "start");
            g.outputs(dynamic_update_slice<tokens>(x, u, at));
            record("dynamic_update_slice_" + s, g, {{"kind", "dynamic_update_slice"}, {"dim", "tokens"}, {"rename_inputs", {{"step", "tokens"}}}},
                   {{"start", json::array({-1, 6})}});
        }
        {
            auto g = make("concatenate_" + s);
            auto a = g.parameter(t[hidden, tokens, batch], "a");
            auto b = g.parameter(t[tokens, batch, hidden], "b");
            auto c = rename<step, tokens>(g.parameter(t[hidden, step, batch], "c"));
            g.outputs(concatenate<tokens>(a, b, c));
            record("concatenate_" + s, g, {{"kind", "concatenate"}, {"dim", "tokens"}, {"rename_inputs", {{"step", "tokens"}}}});
        }
        {
            auto g = make("pad_" + s);
            auto x = g.parameter(t[hidden, tokens], "x");
            g.outputs(pad<tokens>(x, 1.0, 2, 3), pad<hidden>(x, 0.0, -1, 1));
            record("pad_" + s, g, {{"kind", "pad"}, {"parts", {{{"dim", "tokens"}, {"value", 1.0}, {"low", 2}, {"high", 3}},
                                                              {{"dim", "hidden"}, {"value", 0.0}, {"low", -1}, {"high", 1}}}}});
        }
        {
            auto g = make("take_" + s);
            auto x = g.parameter(t[hidden, tokens, batch], "x");
            auto at = g.parameter(s32[], "start");
            g.outputs(take<tokens>(x, 3), take<batch>(x, at), take<hidden>(take<tokens>(take<batch>(x, 2), at), 5));
            record("take_" + s, g, {{"kind", "take"}}, {{"start", json::array({-2, 7})}});
        }
        {
            auto g = make("gather_" + s);
            auto table = g.parameter(t[vocab, hidden], "table");
            auto ids = g.parameter(s32[tokens, batch], "ids");
            g.outputs(gather<vocab>(table, ids));
            record("gather_" + s, g, {{"kind", "gather"}, {"dim", "vocab"}}, {{"ids", json::array({0, 6})}});
        }
    }, pred, s8, u8, s32, s64, u32, f16, bf16, f32, f64);
    // scatter_add: indices repeat and fall outside [0, 7) on both sides (skipped);
    // the updates come in another order and are aligned by name.
    each([](auto t) {
        const std::string s = dn(t);
        {
            auto g = make("scatter_add_" + s);
            auto table = g.parameter(t[vocab, hidden], "table");
            auto ids = g.parameter(s32[tokens, batch], "ids");
            auto updates = g.parameter(t[batch, hidden, tokens], "updates");
            g.outputs(scatter_add<vocab>(table, ids, updates));
            record("scatter_add_" + s, g, {{"kind", "scatter"}, {"dim", "vocab"}}, {{"ids", json::array({-2, 8})}});
        }
        {   // A rank-1 table (no window dimensions) and unsigned indices.
            auto g = make("scatter_add_rows_" + s);
            auto table = g.parameter(t[vocab], "table");
            auto ids = g.parameter(u8[tokens], "ids");
            auto updates = g.parameter(t[tokens], "updates");
            g.outputs(scatter_add<vocab>(table, ids, updates));
            record("scatter_add_rows_" + s, g, {{"kind", "scatter"}, {"dim", "vocab"}}, {{"ids", json::array({0, 9})}});
        }
    }, s8, u8, s32, s64, u32, f16, bf16, f32, f64);
}

// Threefry random numbers: every output is recorded with its counters' offset
// (a number, or "offset": the input of that name) and the key (inputs k0 and k1,
// or the words of a seed).
void random_numbers() {
    const json full_u32 = json::array({0, (std::int64_t{1} << 32) - 1});
    {
        auto g = make("random_bits");
        auto k0 = g.parameter(u32[], "k0");  // made in order: the reference reads inputs so
        auto k1 = g.parameter(u32[], "k1");
        random_key key(k0, k1);
        auto offset = g.parameter(u32[], "offset");
        g.outputs(random_bits(key, u32[batch, tokens]), random_bits(key, u32[hidden, tokens, batch], offset),
                  random_bits(key, u32[tokens], std::uint64_t{0xfffffffd}), random_bits(key, u32[vocab], (std::uint64_t{5} << 32) + 17),
                  random_bits(key, u32[]), random_uniform(key, f32[tokens, batch]), random_uniform(key, f16[tokens, batch]),
                  random_uniform(key, bf16[tokens, batch]), random_uniform(key, f64[tokens, batch]),
                  random_uniform(key, f32[hidden, batch], offset));
        const json parts = json::array({json{{"fn", "bits"}, {"offset", 0}}, json{{"fn", "bits"}, {"offset", "offset"}},
                                        json{{"fn", "bits"}, {"offset", 0xfffffffdu}},
                                        json{{"fn", "bits"}, {"offset", (std::uint64_t{5} << 32) + 17}},
                                        json{{"fn", "bits"}, {"offset", 0}}, json{{"fn", "uniform"}, {"offset", 0}},
                                        json{{"fn", "uniform"}, {"offset", 0}}, json{{"fn", "uniform"}, {"offset", 0}},
                                        json{{"fn", "uniform"}, {"offset", 0}}, json{{"fn", "uniform"}, {"offset", "offset"}}});
        record("random_bits", g, {{"kind", "random"}, {"key", "inputs"}, {"parts", parts}},
               {{"k0", full_u32}, {"k1", full_u32}, {"offset", full_u32}});
    }
    {   // A seed's key; a run-time offset near 2^32, so the counters carry; shapes of another tensor.
        const std::uint64_t seed = 1234567890123;
        auto g = make("random_carry");
        random_key key(g, seed);
        auto offset = g.parameter(u32[], "offset");
        auto like = g.parameter(bf16[tokens, hidden], "like");
        g.outputs(random_bits(key, like, offset), random_uniform(key, like, offset));
        record("random_carry", g, {{"kind", "random"}, {"key", {seed >> 32, seed & 0xffffffffu}},
                                   {"parts", {{{"fn", "bits"}, {"offset", "offset"}}, {{"fn", "uniform"}, {"offset", "offset"}}}}},
               {{"offset", json::array({(std::int64_t{1} << 32) - 40, (std::int64_t{1} << 32) - 1})}});
    }
    {   // Stochastic rounding to bf16: integer adds of the counters' bits, so XLA's roundings are the CPU's.
        auto g = make("stochastic_round_bf16");
        auto k0 = g.parameter(u32[], "k0");
        auto k1 = g.parameter(u32[], "k1");
        random_key key(k0, k1);
        auto offset = g.parameter(u32[], "offset");
        auto x = g.parameter(f32[tokens, hidden], "x");
        g.outputs(stochastic_round_bf16(key, x, offset));
        record("stochastic_round_bf16", g,
               {{"kind", "random"}, {"key", "inputs"}, {"parts", {{{"fn", "round_bf16"}, {"offset", "offset"}}}}},
               {{"k0", full_u32}, {"k1", full_u32}, {"offset", full_u32}});
    }
}

void multiple_outputs_and_alias() {
    {
        auto g = make("tuple_outputs");
        auto x = g.parameter(f32[hidden, tokens], "x");
        auto i = g.parameter(s32[tokens], "i");
        g.outputs(exp(x), i, x * x);
        record("tuple_outputs", g, {{"kind", "expression"}, {"fn", "tuple_outputs"}});
    }
    {   // A KV-cache style update: the cache parameter is aliased to the first output.
        auto g = make("alias_cache_update");
        auto cache = g.parameter(f32[hidden, tokens, batch], "cache");
        auto fresh = rename<step, tokens>(g.parameter(f32[hidden, step, batch], "new"));
        auto at = g.parameter(s32[], "position");
        auto updated = dynamic_update_slice<tokens>(cache, fresh, at);
        g.outputs(updated, reduce_sum<tokens>(updated));
        g.alias(0, cache);
        record("alias_cache_update", g, {{"kind", "expression"}, {"fn", "alias_cache_update"}, {"rename_inputs", {{"step", "tokens"}}}},
               {{"position", json::array({0, 4})}});
    }
    {   // A batch of caches, each row written at its own position (a decode step for
        // sequences of different lengths): updates with starts along two dimensions.
        auto g = make("dus_rows");
        auto cache = g.parameter(f32[batch, tokens, hidden], "cache");
        auto fresh = g.parameter(f32[batch, step, hidden], "new");
        auto pos = g.parameter(s32[batch], "pos");
        auto y = cache;
        for (int b = 0; b < 3; ++b) {
            auto row = rename<step, tokens>(slice<batch>(fresh, b, b + 1));
            y = dynamic_update_slice<batch, tokens>(y, row, g.constant(s32, b), reduce_sum<batch>(slice<batch>(pos, b, b + 1)));
        }
        g.outputs(y);
        g.alias(0, cache);
        record("dus_rows", g, {{"kind", "expression"}, {"fn", "dus_rows"}}, {{"pos", json::array({-1, 6})}});
    }
}

void collectives() {
    for (int n : {2, 4}) {
        const auto groups = replica_groups::all(n);
        each([&](auto t) {
            const std::string s = dn(t) + "_x" + std::to_string(n);
            {
                auto g = make("all_reduce_sum_" + s);
                g.outputs(all_reduce_sum(g.parameter(t[hidden, tokens], "x"), groups));
                record("all_reduce_sum_" + s, g, {{"kind", "all_reduce"}, {"fn", "sum"}}, {}, n);
            }
            {
                auto g = make("all_reduce_max_" + s);
                g.outputs(all_reduce_max(g.parameter(t[hidden, tokens], "x"), groups));
                record("all_reduce_max_" + s, g, {{"kind", "all_reduce"}, {"fn", "max"}}, {}, n);
            }
            {
                auto g = make("all_gather_" + s);
                g.outputs(all_gather<hidden>(g.parameter(t[tokens, hidden], "x"), groups));
                record("all_gather_" + s, g, {{"kind", "all_gather"}, {"dim", "hidden"}}, {}, n);
            }
        }, f16, bf16, f32, f64, s32, u32);
    }
    {   // Two groups of two among four replicas.
        auto g = make("all_reduce_sum_groups_of_2");
        g.outputs(all_reduce_sum(g.parameter(f32[hidden], "x"), replica_groups{{{0, 1}, {2, 3}}}));
        record("all_reduce_sum_groups_of_2", g, {{"kind", "all_reduce"}, {"fn", "sum"}, {"groups", {{0, 1}, {2, 3}}}}, {}, 4);
    }
}

}  // namespace

// Gradients: the backward pass of forward cases, in f64. The loss is
// sum over outputs k of sum(y_k * zz_cotangent_k), the cotangents inputs too, and
// the case's outputs are d(loss)/d(each input named in `wrt`). The reference
// differentiates its own forward reference of the `of` description by central
// differences, so XLA's and the CPU backend's gradients are checked against
// numbers that never went through a gradient rule.
template <class Forward>
void gradient_case(const std::string& name, Forward forward, json of, std::vector<std::string> wrt, json domains = json::object()) {
    auto g = make("grad_" + name);
    const std::vector<node_id> ys = forward(g);
    json forward_outputs = json::array();
    node_id loss = -1;
    for (std::size_t k = 0; k < ys.size(); ++k) {
        const auto y = g[ys[k]];
        forward_outputs.push_back({{"dtype", std::string(scribe::name(y.type))}, {"dims", shape_json(y.dims)}});
        const auto cot = g.add_parameter(y.type, y.dims, "zz_cotangent_" + std::to_string(k));
        const auto part = ir::sum_all(g, ir::binary(g, scribe::op::mul, ys[k], cot));
        loss = loss < 0 ? part : ir::binary(g, scribe::op::add, loss, part);
    }
    std::vector<node_id> ids;
    for (const auto& w : wrt) ids.push_back(*g.find_parameter(w));
    g.set_outputs(gradients(g, loss, ids));
    record("grad_" + name, g, {{"kind", "gradient"}, {"of", std::move(of)}, {"wrt", wrt}, {"forward_outputs", forward_outputs}},
           std::move(domains));
}

void gradient_cases() {
    using ids = std::vector<node_id>;
    const char* unary_names[] = {"neg", "abs", "exp", "expm1", "log", "log1p", "sqrt", "rsqrt", "tanh", "logistic", "sin", "cos", "erf"};
    for (const char* fn : unary_names) {
        const std::string f = fn;
        gradient_case(f, [&](graph& g) {
            auto x = g.parameter(f64[hidden, tokens, batch], "x");
            auto y = f == "neg" ? -x : f == "abs" ? abs(x) : f == "exp" ? exp(x) : f == "expm1" ? expm1(x) : f == "log" ? log(x)
                   : f == "log1p" ? log1p(x) : f == "sqrt" ? sqrt(x) : f == "rsqrt" ? rsqrt(x) : f == "tanh" ? tanh(x)
                   : f == "logistic" ? logistic(x) : f == "sin" ? sin(x) : f == "cos" ? cos(x) : erf(x);
            return ids{y.id()};
        }, {{"kind", "unary"}, {"fn", f}}, {"x"},
        {{"x", f == "log" || f == "log1p" || f == "sqrt" || f == "rsqrt" ? "positive" : f == "abs" ? "nonzero" : "any"}});
    }
    auto binary = [](const std::string& f, auto fn, json domains) {
        // Each parameter made in a statement of its own: the reference reads the
        // inputs in the order they are made, which a call's arguments leave unspecified.
        gradient_case(f, [&](graph& g) {
            auto a = g.parameter(f64[hidden, tokens, batch], "a");
            auto b = g.parameter(f64[hidden, tokens, batch], "b");
            return ids{fn(a, b).id()};
        }, {{"kind", "binary"}, {"fn", f}}, {"a", "b"}, domains);
        gradient_case(f + "_aligned", [&](graph& g) {
            auto a = g.parameter(f64[hidden, tokens, batch], "a");
            auto b = g.parameter(f64[batch, hidden, tokens], "b");
            return ids{fn(a, b).id()};
        }, {{"kind", "binary"}, {"fn", f}}, {"a", "b"}, domains);
        gradient_case(f + "_scalar", [&](graph& g) {
            auto a = g.parameter(f64[tokens, batch], "a");
            auto b = g.parameter(f64[], "b");
            return ids{fn(a, b).id()};
        }, {{"kind", "binary"}, {"fn", f}}, {"a", "b"}, domains);
    };
    binary("add", [](auto a, auto b) { return a + b; }, json::object());
    binary("subtract", [](auto a, auto b) { return a - b; }, json::object());
    binary("multiply", [](auto a, auto b) { return a * b; }, json::object());
    binary("divide", [](auto a, auto b) { return a / b; }, {{"b", "nonzero"}});
    binary("maximum", [](auto a, auto b) { return maximum(a, b); }, json::object());
    binary("minimum", [](auto a, auto b) { return minimum(a, b); }, json::object());
    binary("power", [](auto a, auto b) { return pow(a, b); }, {{"a", "positive"}});
    gradient_case("convert", [](graph& g) { return ids{convert<f64>(g.parameter(f32[hidden, tokens], "x")).id()}; },
                  {{"kind", "convert"}}, {"x"});
    gradient_case("select", [](graph& g) {
        auto p = g.parameter(pred[tokens, hidden], "p");
        auto a = g.parameter(f64[hidden, tokens], "a");
        auto b = g.parameter(f64[hidden, tokens], "b");
        return ids{select(p, a, b).id()};
    }, {{"kind", "select"}}, {"a", "b"});
    gradient_case("broadcast", [](graph& g) { return ids{broadcast<tokens, batch>(g.parameter(f64[hidden], "x")).id()}; },
                  {{"kind", "broadcast"}}, {"x"});
    gradient_case("transpose", [](graph& g) {
        auto x = g.parameter(f64[hidden, tokens, batch], "x");
        auto y = g.parameter(f64[batch, tokens], "y");
        return ids{transpose<batch, hidden, tokens>(x).id(), transpose<tokens, batch>(y).id()};
    }, {{"kind", "transpose"}}, {"x", "y"});
    gradient_case("split", [](graph& g) { return ids{split<hidden, heads, head_dim>(g.parameter(f64[tokens, hidden, batch], "x")).id()}; },
                  {{"kind", "split"}, {"from", "hidden"}, {"into", {"heads", "head_dim"}}}, {"x"});
    gradient_case("merge", [](graph& g) { return ids{merge<heads, head_dim, hidden>(g.parameter(f64[head_dim, tokens, heads], "x")).id()}; },
                  {{"kind", "merge"}, {"from", {"heads", "head_dim"}}, {"into", "hidden"}}, {"x"});
    gradient_case("dot_matmul", [](graph& g) {
        auto w = g.parameter(f64[hidden, vocab], "w");
        auto h = g.parameter(f64[hidden, tokens, batch], "h");
        return ids{dot<hidden>(w, h).id()};
    }, {{"kind", "dot"}, {"contract", {"hidden"}}}, {"w", "h"});
    gradient_case("dot_batched", [](graph& g) {
        auto q = g.parameter(f64[head_dim, tokens, heads, batch], "q");
        auto k = g.parameter(f64[batch, heads, head_dim, vocab], "k");
        return ids{dot<head_dim, batched<batch, heads>>(q, k).id()};
    }, {{"kind", "dot"}, {"contract", {"head_dim"}}}, {"q", "k"});
    gradient_case("dot_two_contracting", [](graph& g) {
        auto a = g.parameter(f64[heads, head_dim, tokens], "a");
        auto b = g.parameter(f64[out, head_dim, heads], "b");
        return ids{dot<heads, head_dim>(a, b).id()};
    }, {{"kind", "dot"}, {"contract", {"heads", "head_dim"}}}, {"a", "b"});
    gradient_case("reduce", [](graph& g) {
        auto x = g.parameter(f64[hidden, tokens, batch], "x");
        return ids{reduce_sum<tokens>(x).id(), reduce_max<hidden, batch>(x).id(), reduce_min<batch>(x).id()};
    }, {{"kind", "reduce"}, {"parts", {{{"fn", "sum"}, {"dims", {"tokens"}}}, {{"fn", "max"}, {"dims", {"hidden", "batch"}}},
                                       {{"fn", "min"}, {"dims", {"batch"}}}}}}, {"x"});
    gradient_case("mean", [](graph& g) { return ids{mean<tokens, batch>(g.parameter(f64[hidden, tokens, batch], "x")).id()}; },
                  {{"kind", "reduce"}, {"parts", {{{"fn", "mean"}, {"dims", {"tokens", "batch"}}}}}}, {"x"});
    gradient_case("softmax", [](graph& g) {
        auto x = g.parameter(f64[vocab, tokens, batch], "x");
        return ids{softmax<vocab>(x).id(), log_softmax<vocab>(x).id(), softmax<tokens>(x * 4.0).id()};
    }, {{"kind", "softmax"}}, {"x"});
    gradient_case("slice", [](graph& g) {
        auto x = g.parameter(f64[hidden, tokens, batch], "x");
        return ids{slice<tokens>(x, 1, 4).id(), slice<hidden>(slice<batch>(x, 2, 3), 0, 6).id()};
    }, {{"kind", "slice"}, {"parts", {{{"dim", "tokens"}, {"start", 1}, {"limit", 4}},
                                      {{"chain", {{{"dim", "batch"}, {"start", 2}, {"limit", 3}}, {{"dim", "hidden"}, {"start", 0}, {"limit", 6}}}}}}}},
       {"x"});
    gradient_case("dynamic_slice", [](graph& g) {
        auto x = g.parameter(f64[hidden, tokens, batch], "x");
        auto at = g.parameter(s32[], "start");
        return ids{dynamic_slice<tokens>(x, at, 2).id()};
    }, {{"kind", "dynamic_slice"}, {"dim", "tokens"}, {"size", 2}}, {"x"}, {{"start", json::array({-1, 6})}});
    gradient_case("dynamic_update_slice", [](graph& g) {
        auto x = g.parameter(f64[hidden, tokens, batch], "cache");
        auto u = rename<step, tokens>(g.parameter(f64[batch, hidden, step], "update"));
        auto at = g.parameter(s32[], "start");
        return ids{dynamic_update_slice<tokens>(x, u, at).id()};
    }, {{"kind", "dynamic_update_slice"}, {"dim", "tokens"}, {"rename_inputs", {{"step", "tokens"}}}}, {"cache", "update"},
       {{"start", json::array({-1, 6})}});
    gradient_case("concatenate", [](graph& g) {
        auto a = g.parameter(f64[hidden, tokens, batch], "a");
        auto b = g.parameter(f64[tokens, batch, hidden], "b");
        auto c = rename<step, tokens>(g.parameter(f64[hidden, step, batch], "c"));
        return ids{concatenate<tokens>(a, b, c).id()};
    }, {{"kind", "concatenate"}, {"dim", "tokens"}, {"rename_inputs", {{"step", "tokens"}}}}, {"a", "b", "c"});
    gradient_case("pad", [](graph& g) {
        auto x = g.parameter(f64[hidden, tokens], "x");
        return ids{pad<tokens>(x, 1.0, 2, 3).id(), pad<hidden>(x, 0.0, -1, 1).id()};
    }, {{"kind", "pad"}, {"parts", {{{"dim", "tokens"}, {"value", 1.0}, {"low", 2}, {"high", 3}},
                                    {{"dim", "hidden"}, {"value", 0.0}, {"low", -1}, {"high", 1}}}}}, {"x"});
    gradient_case("take", [](graph& g) {
        auto x = g.parameter(f64[hidden, tokens, batch], "x");
        auto at = g.parameter(s32[], "start");
        return ids{take<tokens>(x, 3).id(), take<batch>(x, at).id(), take<hidden>(take<tokens>(take<batch>(x, 2), at), 5).id()};
    }, {{"kind", "take"}}, {"x"}, {{"start", json::array({-2, 7})}});
    gradient_case("gather", [](graph& g) {
        auto table = g.parameter(f64[vocab, hidden], "table");
        auto idx = g.parameter(s32[tokens, batch], "ids");
        return ids{gather<vocab>(table, idx).id()};
    }, {{"kind", "gather"}, {"dim", "vocab"}}, {"table"}, {{"ids", json::array({-2, 8})}});
    gradient_case("scatter_add", [](graph& g) {
        auto table = g.parameter(f64[vocab, hidden], "table");
        auto idx = g.parameter(s32[tokens, batch], "ids");
        auto updates = g.parameter(f64[batch, hidden, tokens], "updates");
        return ids{scatter_add<vocab>(table, idx, updates).id()};
    }, {{"kind", "scatter"}, {"dim", "vocab"}}, {"table", "updates"}, {{"ids", json::array({-2, 8})}});
}

int main(int argc, char** argv) try {
    cpu_mode = argc == 3 && std::string(argv[1]) == "--cpu";
    if (argc != 2 && !cpu_mode) {
        std::fprintf(stderr, "usage: gen_cases OUTPUT_DIR | gen_cases --cpu DIR\n");
        return 2;
    }
    out_dir = argv[argc - 1];
    std::filesystem::create_directories(out_dir);
    parameters_and_constants();
    converts();
    unaries();
    binaries();
    compares_and_selects();
    layouts();
    dots();
    reductions();
    slicing_ops();
    random_numbers();
    multiple_outputs_and_alias();
    collectives();
    gradient_cases();
    if (cpu_mode) {
        std::printf("ran the cases on the CPU backend into %s\n", (out_dir / "cpu").c_str());
        return 0;
    }
    std::ofstream(out_dir / "cases.json") << cases.dump(1);
    std::printf("wrote %zu cases to %s\n", cases.size(), out_dir.c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
