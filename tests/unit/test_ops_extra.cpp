// sign, expm1, log1p; the bitwise ops and shifts at every integer width;
// bitcast_convert; scatter_add; and the counter-based random numbers (Threefry
// known-answer vectors, and JAX's own bits and uniforms). Each on the CPU backend,
// with its edge cases; tests/xla runs every one against XLA too.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <scribe/cpu.hpp>

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_ops_extra {

SCRIBE_DIM(rows);
SCRIBE_DIM(cols);
SCRIBE_DIM(vocab);
SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);
SCRIBE_DIM(batch);

using namespace scribe;

namespace {

template <class T>
cpu::array in(const std::vector<T>& v, shape s) {
    return cpu::array::borrow(cpu::detail::dtype_of_value<T>(), std::move(s), v.data(), v.size() * sizeof(T));
}

template <class T>
std::vector<T> values(const cpu::array& a) {
    const auto v = a.values<T>();
    return {v.begin(), v.end()};
}

// Element i of an integer or pred array, exactly.
std::int64_t int_at(const cpu::array& a, std::int64_t i) {
    return load_as_int(a.type(), a.data() + i * info(a.type()).bytes);
}

template <class F, class... T>
void each(F&& f, T... tags) {
    (f(tags), ...);
}

template <auto Spec, class X>
void expect_type(const X&) {
    static_assert(std::is_same_v<X, tensor_of<Spec>>);
}

bool same_bits(double a, double b) { return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b); }

}  // namespace

// --- sign, expm1, log1p -------------------------------------------------------

TEST_CASE("ops: the result types of the new ops") {
    graph g("types");
    g.bind(rows(2), cols(3), vocab(4), tokens(5));
    auto x = g.parameter(f32[rows, cols], "x");
    auto n = g.parameter(s32[rows, cols], "n");
    auto m = g.parameter(s32[cols, rows], "m");
    auto p = g.parameter(pred[rows, cols], "p");
    auto table = g.parameter(f32[vocab, cols], "table");
    auto ids = g.parameter(s32[tokens], "ids");
    auto upd = g.parameter(f32[tokens, cols], "upd");
    expect_type<f32[rows, cols]>(sign(x));
    expect_type<s32[rows, cols]>(sign(n));
    expect_type<f32[rows, cols]>(expm1(x));
    expect_type<f32[rows, cols]>(log1p(x));
    expect_type<s32[rows, cols]>(bitwise_and(n, m));  // m aligned by name
    expect_type<s32[rows, cols]>(n | 3);
    expect_type<s32[rows, cols]>(~n ^ m);
    expect_type<pred[rows, cols]>(p & true);
    expect_type<s32[rows, cols]>(shift_right_arithmetic(n, m));
    expect_type<u32[rows, cols]>(bitcast_convert<u32>(x));
    expect_type<f32[vocab, cols]>(scatter_add<vocab>(table, ids, upd));
    random_key key(g, 7);
    expect_type<u32[rows, cols]>(random_bits(key, u32[rows, cols]));
    expect_type<u32[rows, cols]>(random_bits(key, x));
    expect_type<bf16[rows, cols]>(random_uniform(key, bf16[rows, cols], 12));
    expect_type<f32[rows, cols]>(random_uniform(key, x, g.constant(u32, 3)));
}

TEST_CASE("sign, expm1 and log1p: XLA's values at the edges, fused and not") {
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    const std::vector<double> xs{-2.5, -0.0, 0.0, 3.0, nan, -inf, inf, 1e-10, -1e-7, -1.0, 0.5};
    for (const bool fuse : {true, false}) {
        graph g("unary");
        g.bind(cols(static_cast<std::int64_t>(xs.size())));
        auto x = g.parameter(f64[cols], "x");
        auto y = g.parameter(f32[cols], "y");
        g.outputs(sign(x), expm1(x), log1p(x), sign(y), expm1(y), log1p(y));
        std::vector<float> ys(xs.begin(), xs.end());
        const auto out = cpu::executor(g, {.fuse = fuse})({{"x", in(xs, {{"cols", 11}})}, {"y", in(ys, {{"cols", 11}})}});
        const auto s = values<double>(out[0]), e = values<double>(out[1]), l = values<double>(out[2]);
        const auto sf = values<float>(out[3]), ef = values<float>(out[4]), lf = values<float>(out[5]);
        for (std::size_t i = 0; i < xs.size(); ++i) {
            INFO("x = " << xs[i] << (fuse ? " fused" : " unfused"));
            const double want_sign = std::isnan(xs[i]) || xs[i] == 0 ? xs[i] : (xs[i] < 0 ? -1.0 : 1.0);
            CHECK((std::isnan(want_sign) ? std::isnan(s[i]) : same_bits(s[i], want_sign)));  // -0 stays -0
            CHECK((std::isnan(want_sign) ? std::isnan(sf[i]) : same_bits(sf[i], want_sign)));
            CHECK((std::isnan(xs[i]) ? std::isnan(e[i]) : same_bits(e[i], std::expm1(xs[i]))));
            CHECK((std::isnan(xs[i]) || xs[i] < -1 ? std::isnan(l[i]) : same_bits(l[i], std::log1p(xs[i]))));
            const float xf = ys[i];
            if (std::isfinite(xf)) {  // the vector forms are within an ulp or two of the exact ones
                CHECK(ef[i] == Approx(std::expm1(xf)).epsilon(4e-7).margin(1e-30));
                if (xf > -1) CHECK(lf[i] == Approx(std::log1p(xf)).epsilon(4e-7).margin(1e-30));
            }
        }
        CHECK(ef[7] == Approx(1e-10f).epsilon(1e-6));  // exact near 0, where exp(x) - 1 is 0
        CHECK(lf[7] == Approx(1e-10f).epsilon(1e-6));
        CHECK(std::isinf(lf[9]));
        CHECK(lf[9] < 0);
    }
}

TEST_CASE("sign of signed integers, 16-bit floats through the fused kernel") {
    graph g("sign");
    g.bind(cols(5));
    auto a = g.parameter(s8[cols], "a");
    auto b = g.parameter(s64[cols], "b");
    auto h = g.parameter(bf16[cols], "h");
    g.outputs(sign(a), sign(b), sign(h) * 2.0);
    const std::vector<std::int8_t> av{-128, -1, 0, 1, 127};
    const std::vector<std::int64_t> bv{std::numeric_limits<std::int64_t>::min(), -5, 0, 9, std::numeric_limits<std::int64_t>::max()};
    std::vector<bfloat16> hv;
    for (float v : {-3.0f, -0.0f, 0.0f, 0.25f, 1e30f}) hv.push_back({f32_to_bf16_bits(v)});
    const auto out = cpu::executor(g)({{"a", in(av, {{"cols", 5}})}, {"b", in(bv, {{"cols", 5}})}, {"h", in(hv, {{"cols", 5}})}});
    CHECK(values<std::int8_t>(out[0]) == std::vector<std::int8_t>{-1, -1, 0, 1, 1});
    CHECK(values<std::int64_t>(out[1]) == std::vector<std::int64_t>{-1, -1, 0, 1, 1});
    const auto hs = values<bfloat16>(out[2]);
    const std::vector<float> want{-2, -0.0f, 0, 2, 2};
    for (std::size_t i = 0; i < 5; ++i) CHECK(hs[i].bits == f32_to_bf16_bits(want[i]));
}

// --- bitwise ops and shifts --------------------------------------------------

namespace {

// The expected result of op k on `bits`-wide two's-complement operands, worked
// out on 64-bit words: what XLA specifies, independently of the kernel.
std::int64_t expected_bitwise(op k, std::int64_t a, std::int64_t b, int bits, bool is_signed) {
    const std::uint64_t mask = bits == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1;
    const std::uint64_t x = static_cast<std::uint64_t>(a) & mask, y = static_cast<std::uint64_t>(b) & mask;
    const auto n = static_cast<std::uint64_t>(bits);
    const bool top = (x >> (bits - 1)) & 1;
    std::uint64_t r = 0;
    switch (k) {
        case op::bitwise_not: r = ~x & mask; break;
        case op::bitwise_and: r = x & y; break;
        case op::bitwise_or: r = x | y; break;
        case op::bitwise_xor: r = x ^ y; break;
        case op::shift_left: r = y >= n ? 0 : (x << y) & mask; break;
        case op::shift_right_logical: r = y >= n ? 0 : x >> y; break;
        case op::shift_right_arithmetic:
            if (y >= n) r = top ? mask : 0;
            else r = (x >> y) | (top ? mask & ~(mask >> y) : 0);
            break;
        default: FAIL("not a bitwise op");
    }
    if (!is_signed || bits == 64) return static_cast<std::int64_t>(r);
    return static_cast<std::int64_t>(r << (64 - bits)) >> (64 - bits);  // sign-extended
}

}  // namespace

TEST_CASE("bitwise ops and shifts: XLA's semantics at every integer width") {
    // Values and shift amounts around the edges: 0, 1, -1, the sign bit, the width.
    const std::vector<std::int64_t> as{0, 1, -1, 0x55, -128, 127, 0x40000000, std::numeric_limits<std::int64_t>::min(),
                                       0x7fffffff, -2, 37, 200};
    const std::vector<std::int64_t> bs{0, 1, 3, 7, 8, 9, 31, 32, 33, 63, 64, -1};
    each([&](auto t) {
        constexpr dtype id = decltype(t)::id;
        const int bits = info(id).bytes * 8;
        const bool is_signed = info(id).is_signed;
        graph g(std::string("bitwise_") + std::string(name(id)));
        g.bind(cols(static_cast<std::int64_t>(as.size())));
        auto a = g.parameter(t[cols], "a");
        auto b = g.parameter(t[cols], "b");
        g.outputs(bitwise_not(a), bitwise_and(a, b), bitwise_or(a, b), bitwise_xor(a, b), shift_left(a, b),
                  shift_right_logical(a, b), shift_right_arithmetic(a, b));
        const op kinds[] = {op::bitwise_not, op::bitwise_and, op::bitwise_or, op::bitwise_xor,
                            op::shift_left, op::shift_right_logical, op::shift_right_arithmetic};
        // Inputs: each value's low bytes, as the dtype stores it (wrapped).
        auto bytes_of = [&](const std::vector<std::int64_t>& v) {
            std::vector<unsigned char> out(v.size() * static_cast<std::size_t>(info(id).bytes));
            for (std::size_t i = 0; i < v.size(); ++i) std::memcpy(out.data() + i * static_cast<std::size_t>(info(id).bytes), &v[i], static_cast<std::size_t>(info(id).bytes));
            return out;
        };
        const auto ab = bytes_of(as), bb = bytes_of(bs);
        const shape s{{"cols", static_cast<std::int64_t>(as.size())}};
        const auto out = cpu::executor(g)({{"a", cpu::array::borrow(id, s, ab.data(), ab.size())},
                                           {"b", cpu::array::borrow(id, s, bb.data(), bb.size())}});
        for (std::size_t k = 0; k < std::size(kinds); ++k)
            for (std::size_t i = 0; i < as.size(); ++i) {
                INFO(name(id) << " " << info(kinds[k]).name << "(" << as[i] << ", " << bs[i] << ")");
                CHECK(int_at(out[k], static_cast<std::int64_t>(i)) == expected_bitwise(kinds[k], as[i], bs[i], bits, is_signed));
            }
    }, s8, u8, s32, s64, u32);
}

TEST_CASE("bitwise: the spelled-out cases") {
    graph g("spelled");
    g.bind(cols(1));
    auto a = g.parameter(s8[cols], "a");
    auto u = g.parameter(u8[cols], "u");
    auto w = g.parameter(u32[cols], "w");
    g.outputs(shift_right_logical(a, 1), shift_right_arithmetic(a, 1), shift_right_arithmetic(a, 8), shift_left(a, -1),
              shift_right_arithmetic(u, 1), shift_left(w, 31), shift_left(w, 32), shift_right_logical(w, 100));
    const std::vector<std::int8_t> av{-1};
    const std::vector<std::uint8_t> uv{0x80};
    const std::vector<std::uint32_t> wv{3};
    const auto out = cpu::executor(g)({{"a", in(av, {{"cols", 1}})}, {"u", in(uv, {{"cols", 1}})}, {"w", in(wv, {{"cols", 1}})}});
    CHECK(int_at(out[0], 0) == 127);   // the element's own 8 bits, shifted in zeros
    CHECK(int_at(out[1], 0) == -1);    // the sign copied
    CHECK(int_at(out[2], 0) == -1);    // every bit shifted out: the sign fill
    CHECK(int_at(out[3], 0) == 0);     // -1 as an amount is 255: out of range
    CHECK(int_at(out[4], 0) == 0xc0);  // arithmetic on an unsigned element copies its top bit
    CHECK(int_at(out[5], 0) == 0x80000000);
    CHECK(int_at(out[6], 0) == 0);
    CHECK(int_at(out[7], 0) == 0);
}

TEST_CASE("bitwise on pred, operators, numbers and alignment by name") {
    graph g("pred");
    g.bind(rows(2), cols(2));
    auto p = g.parameter(pred[rows, cols], "p");
    auto q = g.parameter(pred[cols, rows], "q");
    auto n = g.parameter(s32[rows, cols], "n");
    auto m = g.parameter(s32[cols, rows], "m");
    g.outputs(p & q, p | q, p ^ q, ~p, p ^ true, n & m, 0xff ^ n, (n | 0x100) & ~m);
    const std::vector<std::uint8_t> pv{0, 0, 1, 1}, qv{0, 0, 1, 1};  // q is [cols, rows]: q[r][c] = qv[c*2 + r]
    const std::vector<std::int32_t> nv{1, 2, 3, 4}, mv{7, 6, 5, 4};
    const shape rc{{"rows", 2}, {"cols", 2}}, cr{{"cols", 2}, {"rows", 2}};
    const auto out = cpu::executor(g)({{"p", cpu::array::borrow(dtype::pred, rc, pv.data(), 4)},
                                       {"q", cpu::array::borrow(dtype::pred, cr, qv.data(), 4)},
                                       {"n", in(nv, rc)}, {"m", in(mv, cr)}});
    // q in p's order: q'[r][c] = qv[c * 2 + r] = {0, 1, 0, 1}.
    const std::vector<int> qa{0, 1, 0, 1}, ma{7, 5, 6, 4};
    for (std::int64_t i = 0; i < 4; ++i) {
        const auto k = static_cast<std::size_t>(i);
        CHECK(int_at(out[0], i) == (pv[k] & qa[k]));
        CHECK(int_at(out[1], i) == (pv[k] | qa[k]));
        CHECK(int_at(out[2], i) == (pv[k] ^ qa[k]));
        CHECK(int_at(out[3], i) == !pv[k]);
        CHECK(int_at(out[4], i) == !pv[k]);
        CHECK(int_at(out[5], i) == (nv[k] & ma[k]));
        CHECK(int_at(out[6], i) == (0xff ^ nv[k]));
        CHECK(int_at(out[7], i) == ((nv[k] | 0x100) & ~ma[k]));
    }
    // The run-time rule checks the op table's dtypes for an IR built without the typed layer.
    graph h("untyped");
    h.bind(cols(2));
    auto x = h.parameter(f32[cols], "x");
    node bad;
    bad.kind = op::shift_left;
    bad.operands = {x.id(), x.id()};
    CHECK_THROWS_WITH(h.add(bad), Catch::Contains("shift_left: takes integer operands, got f32"));
    node not_float;
    not_float.kind = op::bitwise_not;
    not_float.operands = {x.id()};
    CHECK_THROWS_WITH(h.add(not_float), Catch::Contains("bitwise_not: takes integer or pred operands, got f32"));
    node log1p_int;
    log1p_int.kind = op::log1p;
    log1p_int.operands = {h.parameter(s32[cols], "i").id()};
    CHECK_THROWS_WITH(h.add(log1p_int), Catch::Contains("log1p: takes float operands, got s32"));
}

// --- bitcast_convert ---------------------------------------------------------

TEST_CASE("bitcast_convert reinterprets the bits of one width") {
    graph g("bitcast");
    g.bind(cols(3));
    auto x = g.parameter(f32[cols], "x");
    auto d = g.parameter(f64[cols], "d");
    auto b = g.parameter(s8[cols], "b");
    auto h = g.parameter(f16[cols], "h");
    g.outputs(bitcast_convert<u32>(x), bitcast_convert<s32>(x), bitcast_convert<s64>(d), bitcast_convert<u8>(b),
              bitcast_convert<bf16>(h), bitcast_convert<f32>(bitcast_convert<u32>(x)));
    const std::vector<float> xv{1.0f, -2.0f, std::numeric_limits<float>::quiet_NaN()};
    const std::vector<double> dv{1.0, -0.0, 0.5};
    const std::vector<std::int8_t> bv{-1, 0, -128};
    const std::vector<half> hv{{0x3c00}, {0x8001}, {0x7e00}};
    const auto out = cpu::executor(g)({{"x", in(xv, {{"cols", 3}})}, {"d", in(dv, {{"cols", 3}})},
                                       {"b", in(bv, {{"cols", 3}})}, {"h", in(hv, {{"cols", 3}})}});
    CHECK(values<std::uint32_t>(out[0]) == std::vector<std::uint32_t>{0x3f800000u, 0xc0000000u, std::bit_cast<std::uint32_t>(xv[2])});
    CHECK(values<std::int32_t>(out[1])[1] == std::bit_cast<std::int32_t>(-2.0f));
    CHECK(values<std::int64_t>(out[2]) == std::vector<std::int64_t>{0x3ff0000000000000, std::numeric_limits<std::int64_t>::min(), 0x3fe0000000000000});
    CHECK(values<std::uint8_t>(out[3]) == std::vector<std::uint8_t>{255, 0, 128});
    const auto hb = values<bfloat16>(out[4]);
    CHECK((hb[0].bits == 0x3c00 && hb[1].bits == 0x8001 && hb[2].bits == 0x7e00));
    const auto back = values<float>(out[5]);
    CHECK((back[0] == 1.0f && back[1] == -2.0f && std::bit_cast<std::uint32_t>(back[2]) == std::bit_cast<std::uint32_t>(xv[2])));

    // Widths that differ: the run-time rule names both dtypes (the typed front
    // does not compile them: tests/compile_fail/bitcast_convert_width.cpp).
    node n;
    n.kind = op::bitcast_convert;
    n.type = dtype::f16;
    n.operands = {x.id()};
    CHECK_THROWS_WITH(g.add(n), Catch::Contains("bitcast_convert: f32 (32 bits) to f16 (16 bits): the element widths differ"));
}

// --- scatter_add -------------------------------------------------------------

TEST_CASE("scatter_add: the transpose of gather; duplicates add, out-of-range indices are skipped") {
    graph g("scatter");
    g.bind(vocab(4), hidden(2), tokens(6));
    auto table = g.parameter(f32[vocab, hidden], "table");
    auto ids = g.parameter(s32[tokens], "ids");
    auto updates = g.parameter(f32[tokens, hidden], "updates");  // aligned to [hidden, tokens]
    g.outputs(scatter_add<vocab>(table, ids, updates));
    const std::vector<float> tv{0, 1, 2, 3, 4, 5, 6, 7};
    const std::vector<std::int32_t> iv{1, 3, 1, -1, 4, 0};
    const std::vector<float> uv{10, 20, 100, 200, 1000, 2000, -1, -1, -1, -1, 0.5f, 0.25f};
    for (const bool fuse : {true, false}) {
        const auto out = cpu::executor(g, {.fuse = fuse})(
            {{"table", in(tv, {{"vocab", 4}, {"hidden", 2}})}, {"ids", in(iv, {{"tokens", 6}})},
             {"updates", in(uv, {{"tokens", 6}, {"hidden", 2}})}});
        CHECK(out[0].dims() == shape{{"vocab", 4}, {"hidden", 2}});
        // Row 1 gets tokens 0 and 2, row 3 token 1, row 0 token 5; -1 and 4 are skipped.
        CHECK(values<float>(out[0]) == std::vector<float>{0.5f, 1.25f, 1012, 2023, 4, 5, 106, 207});
    }
    CHECK(tv[2] == 2);  // the borrowed table is not written
}

TEST_CASE("scatter_add: integers wrap, 16-bit floats round after every add, several index and table dims") {
    graph g("scatter_types");
    g.bind(vocab(3), tokens(3), batch(2), hidden(2));
    auto t8 = g.parameter(s8[vocab], "t8");
    auto i8 = g.parameter(u8[tokens], "i8");
    auto u8v = g.parameter(s8[tokens], "u8v");
    auto tb = g.parameter(bf16[vocab], "tb");
    auto ub = g.parameter(bf16[tokens], "ub");
    auto t3 = g.parameter(s32[hidden, vocab], "t3");  // indexed along its second dimension
    auto i2 = g.parameter(s64[tokens, batch], "i2");
    auto u3 = g.parameter(s32[batch, hidden, tokens], "u3");
    g.outputs(scatter_add<vocab>(t8, i8, u8v), scatter_add<vocab>(tb, i8, ub), scatter_add<vocab>(t3, i2, u3));
    const std::vector<std::int8_t> t8v{100, 0, 0}, u8vv{100, 100, 5};
    const std::vector<std::uint8_t> i8v{0, 0, 2};
    std::vector<bfloat16> tbv{{f32_to_bf16_bits(1.0f)}, {0}, {0}}, ubv;
    for (int k = 0; k < 3; ++k) ubv.push_back({f32_to_bf16_bits(1.0f / 256)});
    const std::vector<std::int32_t> t3v{0, 0, 0, 0, 0, 0};
    const std::vector<std::int64_t> i2v{2, 0, 2, 9, 1, 2};  // [tokens, batch]
    std::vector<std::int32_t> u3v(12);
    for (std::size_t k = 0; k < u3v.size(); ++k) u3v[k] = 1 << k;  // [batch, hidden, tokens]
    const auto out = cpu::executor(g)({{"t8", in(t8v, {{"vocab", 3}})}, {"i8", in(i8v, {{"tokens", 3}})},
                                       {"u8v", in(u8vv, {{"tokens", 3}})}, {"tb", in(tbv, {{"vocab", 3}})},
                                       {"ub", in(ubv, {{"tokens", 3}})}, {"t3", in(t3v, {{"hidden", 2}, {"vocab", 3}})},
                                       {"i2", in(i2v, {{"tokens", 3}, {"batch", 2}})},
                                       {"u3", in(u3v, {{"batch", 2}, {"hidden", 2}, {"tokens", 3}})}});
    CHECK(values<std::int8_t>(out[0]) == std::vector<std::int8_t>{44, 0, 5});  // 300 wraps to 44
    // 1 + 1/256 is a tie in bf16 and rounds to 1 after each of the adds (one
    // rounding of the exact sum would give 1.015625).
    CHECK(bf16_bits_to_f32(values<bfloat16>(out[1])[0].bits) == 1.0f);
    CHECK(bf16_bits_to_f32(values<bfloat16>(out[1])[2].bits) == 1.0f / 256);
    // u3[b, h, t] goes to t3[h, i2[t, b]]; i2[1, 1] = 9 is skipped.
    std::vector<std::int32_t> want(6, 0);
    for (int b = 0; b < 2; ++b)
        for (int h = 0; h < 2; ++h)
            for (int t = 0; t < 3; ++t) {
                const auto v = i2v[static_cast<std::size_t>(t * 2 + b)];
                if (v >= 0 && v < 3) want[static_cast<std::size_t>(h * 3 + v)] += u3v[static_cast<std::size_t>(b * 6 + h * 3 + t)];
            }
    CHECK(values<std::int32_t>(out[2]) == want);
}

TEST_CASE("scatter_add: run-time checks name the op and the shapes") {
    graph g("scatter_errors");
    g.bind(vocab(4), hidden(2), tokens(3));
    auto table = g.parameter(f32[vocab, hidden], "table");
    auto ids = g.parameter(s32[tokens], "ids");
    auto updates = g.parameter(f32[hidden, tokens], "updates");
    CHECK_THROWS_WITH(scatter_add<vocab>(table, ids, slice<tokens>(updates, 0, 2)),
                      Catch::Contains("scatter: updates [hidden=2, tokens=2] must be [hidden=2, tokens=3] "
                                      "(the table's dimensions without `vocab`, then the indices')"));
    node n;
    n.kind = op::scatter;
    n.operands = {table.id(), updates.id(), updates.id()};
    n.axes = {0};
    CHECK_THROWS_WITH(g.add(n), Catch::Contains("scatter: indices must be integers, got f32"));
}

// --- HLO ---------------------------------------------------------------------

TEST_CASE("HLO text of the new ops: opcodes and scatter's dimension numbers") {
    graph g("hlo_ops");
    g.bind(vocab(4), hidden(2), tokens(3), batch(2));
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto n = g.parameter(s32[hidden, tokens], "n");
    auto table = g.parameter(f32[hidden, vocab], "table");
    auto ids = g.parameter(s32[tokens, batch], "ids");
    auto updates = g.parameter(f32[hidden, tokens, batch], "updates");
    g.outputs(sign(x), expm1(x), log1p(x), bitcast_convert<u32>(x), ~n, shift_right_logical(n, n),
              shift_right_arithmetic(n, n), shift_left(n, n), n & n, n | n, n ^ n,
              scatter_add<vocab>(table, ids, updates));
    const auto text = hlo::to_text(hlo::lower(g));
    for (const char* s : {" sign(x)", " exponential-minus-one(x)", " log-plus-one(x)", " bitcast-convert(x)", " not(n)",
                          " shift-right-logical(n, n)", " shift-right-arithmetic(n, n)", " shift-left(n, n)", " and(n, n)",
                          " or(n, n)", " xor(n, n)"})
        CHECK_THAT(text, Catch::Contains(s));
    CHECK_THAT(text, Catch::Contains("f32[2,4]{1,0} scatter(table, ids, updates), update_window_dims={0}, "
                                     "inserted_window_dims={1}, scatter_dims_to_operand_dims={1}, "
                                     "index_vector_dim=2, to_apply=add_f32"));
}

// --- random numbers ----------------------------------------------------------

namespace {

std::vector<std::uint32_t> u32_values(const cpu::array& a) { return values<std::uint32_t>(a); }

}  // namespace

TEST_CASE("random: Threefry-2x32 gives the Random123 known-answer vectors") {
    // (key, counter) -> (first, second) word: Salmon et al.'s kat_vectors for 20 rounds.
    struct vector {
        std::uint32_t k0, k1, c0, c1, out0, out1;
    };
    const vector kats[] = {{0, 0, 0, 0, 0x6b200159, 0x99ba4efe},
                           {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x1cb996fc, 0xbb002be7},
                           {0x13198a2e, 0x03707344, 0x243f6a88, 0x85a308d3, 0xc4923a9c, 0x483df7a0}};
    for (const auto& v : kats) {
        graph g("kat");
        random_key key(g.constant(u32, v.k0), g.constant(u32, v.k1));
        const auto [a, b] = detail::threefry_2x32(key, g.constant(u32, v.c0), g.constant(u32, v.c1));
        g.outputs(a, b);
        const auto out = cpu::executor(g)(std::vector<cpu::array>{});
        CHECK(u32_values(out[0])[0] == v.out0);
        CHECK(u32_values(out[1])[0] == v.out1);
    }
}

TEST_CASE("random: JAX's bits and uniforms for jax.random.key(42)") {
    graph g("jax42");
    g.bind(rows(2), cols(3));
    random_key key(g, 42);
    auto like = g.parameter(f32[rows, cols], "like");
    g.outputs(random_bits(key, u32[rows, cols]), random_uniform(key, f32[rows, cols]), random_uniform(key, f64[rows, cols]),
              random_uniform(key, bf16[rows, cols]), random_uniform(key, f16[rows, cols]),
              random_bits(key, like, (std::uint64_t{1} << 32) - 2));
    const std::vector<float> zeros(6, 0.0f);
    const auto out = cpu::executor(g)({{"like", in(zeros, {{"rows", 2}, {"cols", 3}})}});
    // jax.random.bits(jax.random.key(42), (2, 3), jnp.uint32), JAX 0.9.2.
    CHECK(u32_values(out[0]) == std::vector<std::uint32_t>{2098992034u, 2919706841u, 2646866425u, 2409546199u, 1935504149u, 2516274904u});
    // jax.random.uniform(key, (2, 3), dtype) for f32, f64, bf16, f16.
    CHECK(values<float>(out[1]) == std::vector<float>{0.48870956897735596f, 0.6797971725463867f, 0.6162714958190918f,
                                                      0.5610160827636719f, 0.4506446123123169f, 0.58586585521698f});
    CHECK(values<double>(out[2]) == std::vector<double>{0.4267275666499091, 0.015010069515314584, 0.5741444178995352,
                                                        0.7298188969046309, 0.687800341230566, 0.6439377419166104});
    const std::vector<float> bf{0.6328125f, 0.84375f, 0.96875f, 0.8359375f, 0.078125f, 0.84375f};
    const std::vector<float> hf{0.076171875f, 0.1904296875f, 0.9755859375f, 0.7568359375f, 0.44921875f, 0.3076171875f};
    for (std::size_t i = 0; i < 6; ++i) {
        CHECK(bf16_bits_to_f32(values<bfloat16>(out[3])[i].bits) == bf[i]);
        CHECK(f16_bits_to_f32(values<half>(out[4])[i].bits) == hf[i]);
    }
    // Counters 2^32 - 2 ... 2^32 + 3: the low word wraps and the high word carries
    // (JAX's threefry_2x32 on those counter words, the two outputs xored).
    CHECK(u32_values(out[5]) == std::vector<std::uint32_t>{1837984362u, 1763529543u, 3592421270u, 1493161314u, 3580270425u, 3568963970u});
}

TEST_CASE("random: counters are offset + position, so offsets give the other part of one stream") {
    graph g("stream");
    g.bind(rows(3), cols(4), tokens(12), batch(7));
    random_key key(g.parameter(u32[], "k0"), g.parameter(u32[], "k1"));
    auto step = g.parameter(u32[], "step");
    auto whole = random_bits(key, u32[tokens]);                       // counters 0..11
    auto part = random_bits(key, u32[rows, cols], 5);                 // counters 5..16
    auto more = random_bits(key, u32[rows, cols], step);              // a run-time offset
    auto wide = random_bits(key, u32[batch], (std::uint64_t{7} << 32) + 0xfffffffdu);  // high word 7, then 8
    auto wide_rt = random_bits(key, u32[batch], std::uint64_t{0xfffffffdu});
    g.outputs(whole, part, more, wide, wide_rt, random_uniform(key, f32[rows, cols], 5));
    const std::vector<std::uint32_t> k0{1}, k1{2}, st{5};
    const auto out = cpu::executor(g)({{"k0", in(k0, {})}, {"k1", in(k1, {})}, {"step", in(st, {})}});
    const auto w = u32_values(out[0]), p = u32_values(out[1]), m = u32_values(out[2]);
    for (std::size_t i = 0; i < 7; ++i) CHECK(p[i] == w[i + 5]);
    CHECK(p == m);  // the same counters, given at run time
    CHECK(u32_values(out[3]) != u32_values(out[4]));  // the high word takes part
    const auto u = values<float>(out[5]);
    for (std::size_t i = 0; i < u.size(); ++i)
        CHECK(u[i] == static_cast<float>(p[i] >> 9) / 8388608.0f);  // f32: the top 23 bits
}

TEST_CASE("random: uniforms lie in [0, 1) and spread; different keys give different bits") {
    graph g("spread");
    g.bind(tokens(4096));
    random_key a(g, 1), b(g, 2);
    g.outputs(random_uniform(a, f32[tokens]), random_uniform(a, bf16[tokens]), random_bits(a, u32[tokens]), random_bits(b, u32[tokens]));
    const auto out = cpu::executor(g)(std::vector<cpu::array>{});
    double sum = 0;
    for (float v : values<float>(out[0])) {
        CHECK((v >= 0.0f && v < 1.0f));
        sum += v;
    }
    CHECK(sum / 4096 == Approx(0.5).margin(0.02));
    for (auto v : values<bfloat16>(out[1])) CHECK((bf16_bits_to_f32(v.bits) >= 0.0f && bf16_bits_to_f32(v.bits) < 1.0f));
    const auto x = u32_values(out[2]), y = u32_values(out[3]);
    std::size_t same = 0;
    for (std::size_t i = 0; i < x.size(); ++i) same += x[i] == y[i];
    CHECK(same < 3);
}

TEST_CASE("random: stochastic rounding to bf16 is unbiased, picks a neighbour, and keeps bf16 values, infinities and NaNs") {
    constexpr std::int64_t copies = 4096;
    const float third = 1.0f + 1.0f / 3 * 0x1p-7f;  // a third of a bf16 step above 1
    const std::vector<float> x = {third, -2.7182817f, 1e-30f, 0.3f, 1e-40f /* subnormal */, -123456.789f,
                                  1.5f /* a bf16 value */, std::numeric_limits<float>::infinity(),
                                  -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                                  std::bit_cast<float>(0x7f800001u) /* a NaN whose payload is in the low bits */, 3.4e38f};
    const auto n = static_cast<std::int64_t>(x.size());
    graph g("sr");
    g.bind(batch(copies), tokens(n));
    random_key key(g.parameter(u32[], "k0"), g.parameter(u32[], "k1"));
    auto step = g.parameter(u32[], "step");
    auto xs = g.parameter(f32[batch, tokens], "x");
    g.outputs(stochastic_round_bf16(key, xs, step), convert<bf16>(xs));
    std::vector<float> tiled;
    for (std::int64_t c = 0; c < copies; ++c) tiled.insert(tiled.end(), x.begin(), x.end());
    const std::vector<std::uint32_t> k0{7}, k1{11}, st{1000};
    const auto out = cpu::executor(g)({{"k0", in(k0, {})}, {"k1", in(k1, {})}, {"step", in(st, {})},
                                       {"x", in(tiled, {{"batch", copies}, {"tokens", n}})}});
    const auto sr = values<bfloat16>(out[0]), nearest = values<bfloat16>(out[1]);
    for (std::int64_t j = 0; j < n; ++j) {
        const float v = x[static_cast<std::size_t>(j)];
        INFO("x = " << v);
        const auto bits = std::bit_cast<std::uint32_t>(v);
        if (std::isnan(v)) {
            for (std::int64_t c = 0; c < copies; ++c) CHECK(std::isnan(bf16_bits_to_f32(sr[static_cast<std::size_t>(c * n + j)].bits)));
            continue;
        }
        const float below = std::bit_cast<float>(bits & 0xFFFF0000u);  // toward zero, and the neighbour away from it
        const float above = (bits & 0xFFFFu) == 0 ? below : std::bit_cast<float>((bits & 0xFFFF0000u) + 0x10000u);
        double sum = 0;
        for (std::int64_t c = 0; c < copies; ++c) {
            const float r = bf16_bits_to_f32(sr[static_cast<std::size_t>(c * n + j)].bits);
            CHECK((r == below || r == above));
            sum += r;
        }
        if (!std::isfinite(v) || std::isinf(above)) continue;
        // The mean of 4096 roundings: within 5 standard deviations (at most a step / (2 sqrt(4096))) of x.
        const double gap = static_cast<double>(above) - below, mean = sum / copies;
        CHECK(std::abs(mean - v) <= 5 * std::abs(gap) / 128 + 1e-45);
        if (v == third) {  // rounding to nearest always loses the third; stochastic rounding goes up a third of the time
            CHECK(bf16_bits_to_f32(nearest[static_cast<std::size_t>(j)].bits) == 1.0f);
            CHECK(std::abs(mean - v) < std::abs(1.0 - v) / 10);
        }
    }
}

TEST_CASE("random: more than 2^32 elements in one call is an error that says what to do") {
    graph g("huge");
    g.bind(rows(1 << 17), cols(1 << 16));
    random_key key(g, 0);
    CHECK_THROWS_WITH(random_bits(key, u32[rows, cols]),
                      Catch::Contains("random_bits: [rows=131072, cols=65536] has 8589934592 elements, more than 2^32") &&
                          Catch::Contains("make several calls with offsets"));
}

}  // namespace test_ops_extra
