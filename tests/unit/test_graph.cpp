// Graph: the IR that the typed ops build, the extents it infers at run time, and
// the errors it throws when dynamic extents disagree. Each error must name the op,
// the dimensions and both sizes in the user's words.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <scribe/scribe.hpp>

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_graph {

SCRIBE_DIM(hidden);
SCRIBE_DIM(embed);
SCRIBE_DIM(vocab);
SCRIBE_DIM(tokens);
SCRIBE_DIM(keys);
SCRIBE_DIM(batch);
SCRIBE_DIM(heads);
SCRIBE_DIM(head_dim);

using namespace scribe;
using Catch::Contains;

namespace {

// The message of the scribe::error that `f` throws. Any other exception escapes
// and fails the test; no exception at all fails it here.
template <class F>
std::string error_from(F&& f) {
    try {
        f();
    } catch (const scribe::error& e) {
        return e.what();
    }
    FAIL("expected a scribe::error");
    return {};
}

}  // namespace

// --- the IR the typed layer builds -------------------------------------------

TEST_CASE("parameters take their extents from bindings and static extents") {
    graph g("params");
    g.bind(hidden(4), tokens(3));
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto w = g.parameter(f16[vocab.of<7>, hidden], "w");

    CHECK(x.shape() == shape{{"hidden", 4}, {"tokens", 3}});
    CHECK(w.shape() == shape{{"vocab", 7}, {"hidden", 4}});
    CHECK(x.extent(hidden) == 4);
    CHECK(x.extent(tokens) == 3);
    CHECK(w.extent(vocab) == 7);
    CHECK(to_string(x.shape()) == "[hidden=4, tokens=3]");

    CHECK(x.ir().kind == op::parameter);
    CHECK(x.ir().type == dtype::f32);
    CHECK(w.ir().type == dtype::f16);
    CHECK(x.ir().label == "x");
    // Numbered in the order of their names: "w" before "x", though x came first.
    CHECK(w.ir().parameter_number == 0);
    CHECK(x.ir().parameter_number == 1);
    CHECK(g.parameter_count() == 2);
    CHECK(g.parameters() == std::vector<node_id>{w.id(), x.id()});
    CHECK(g.find_parameter("x") == x.id());
    CHECK(!g.find_parameter("y"));
    CHECK(&x.owner() == &g);
    CHECK(g.name() == "params");
}

namespace {
template <class A, class B>
auto product_of(const A& a, const B& b) {
    return dot<hidden>(a, b);
}
}  // namespace

TEST_CASE("parameter numbers follow the names, not the order of evaluation") {
    // Two parameters made in one expression: C++ leaves the order in which the
    // arguments are evaluated unspecified (g++ and clang differ), so the numbers
    // must not depend on which was made first.
    auto numbers = [](bool w_first) {
        graph g("order");
        g.bind(hidden(4), vocab(3), tokens(2));
        if (w_first) {
            auto w = g.parameter(f32[hidden, vocab], "w");
            auto h = g.parameter(f32[hidden, tokens], "h");
            g.outputs(product_of(w, h));
        } else {
            g.outputs(product_of(g.parameter(f32[hidden, vocab], "w"), g.parameter(f32[hidden, tokens], "h")));
        }
        std::vector<std::pair<std::string, std::int64_t>> out;
        for (const auto& n : g.nodes())
            if (n.kind == op::parameter) out.emplace_back(n.label, n.parameter_number);
        std::sort(out.begin(), out.end());
        return std::pair{out, hlo::to_text(g)};
    };
    const auto [made_in_order, text_a] = numbers(true);
    const auto [made_in_one_expression, text_b] = numbers(false);
    using P = std::vector<std::pair<std::string, std::int64_t>>;
    CHECK(made_in_order == P{{"h", 0}, {"w", 1}});
    CHECK(made_in_one_expression == made_in_order);
    // The module's parameter list is in number order, whatever the node order.
    CHECK_THAT(text_a, Contains("h = f32[4,2]{1,0} parameter(0)") && Contains("w = f32[4,3]{1,0} parameter(1)"));
    CHECK_THAT(text_b, Contains("h = f32[4,2]{1,0} parameter(0)") && Contains("w = f32[4,3]{1,0} parameter(1)"));

    // A parameter added later renumbers the ones whose names sort after it.
    graph g("later");
    g.bind(hidden(4));
    auto b = g.parameter(f32[hidden], "b");
    CHECK(b.ir().parameter_number == 0);
    auto a = g.parameter(f32[hidden], "a");
    CHECK(a.ir().parameter_number == 0);
    CHECK(b.ir().parameter_number == 1);
    g.outputs(a + b);
    g.alias(0, b);
    CHECK(g.aliases()[0].parameter_number == 1);
    CHECK_THAT(error_from([&] { (void)g.parameter(f32[hidden], ""); }), Contains("needs a name"));
}

TEST_CASE("an extent bound to a dimension no tensor has is reported") {
    graph g("typo");
    g.bind(hidden(4), tokens(3));
    g.bind("tokenz", 7);  // misspelt
    auto x = g.parameter(f32[hidden, tokens], "x");
    g.outputs(exp(x));
    const auto lower_msg = error_from([&] { (void)hlo::lower(g); });
    CHECK_THAT(lower_msg, Contains("`tokenz` (7)") && Contains("no tensor of the graph has that dimension") &&
                              Contains("hidden, tokens"));
    CHECK(error_from([&] { g.check_bindings(); }) == lower_msg);

    // Extents shared by many graphs: bind_if_used takes no offence, and agrees with bind.
    graph h("shared");
    h.bind_if_used(hidden(4), tokens(3), vocab(11));
    auto y = h.parameter(f32[hidden, tokens], "y");
    h.outputs(exp(y));
    CHECK_NOTHROW(h.check_bindings());
    CHECK_NOTHROW(hlo::lower(h));
    CHECK_THAT(error_from([&] { h.bind(vocab(12)); }), Contains("`vocab` is bound to 11"));
    CHECK_THAT(error_from([&] { h.bind_if_used(tokens(5)); }), Contains("`tokens` is bound to 3"));
}

TEST_CASE("a static extent binds its dimension for later dynamic uses") {
    graph g;
    auto w = g.parameter(f32[hidden.of<6>], "w");
    REQUIRE(g.bound("hidden") == 6);
    CHECK(g.extent("hidden", "test") == 6);
    auto x = g.parameter(f32[hidden], "x");
    CHECK(x.shape() == w.shape());
    CHECK_FALSE(g.bound("tokens").has_value());
    // The same extent again, static or bound, is no conflict.
    g.bind(hidden(6));
    CHECK(g.parameter(f32[hidden.of<6>], "y").extent(hidden) == 6);
}

TEST_CASE("dot orders its result as batch dims then lhs free then rhs free") {
    graph g;
    g.bind(hidden(8), vocab(10), tokens(3), batch(2), heads(4), head_dim(5), keys(6));
    auto w = g.parameter(f32[hidden, vocab], "w");
    auto h = g.parameter(f32[hidden, tokens, batch], "h");
    auto logits = dot<hidden>(w, h);
    CHECK(logits.shape() == shape{{"vocab", 10}, {"tokens", 3}, {"batch", 2}});
    const auto d = logits.ir().dot;  // a copy: appending nodes moves the IR
    CHECK(d.lhs_contracting == std::vector<std::int64_t>{0});
    CHECK(d.rhs_contracting == std::vector<std::int64_t>{0});
    CHECK(d.lhs_batch.empty());

    auto q = g.parameter(f32[tokens, batch, heads, head_dim], "q");
    auto k = g.parameter(f32[heads, head_dim, keys, batch], "k");
    auto scores = dot<head_dim, batched<heads, batch>>(q, k);
    CHECK(scores.shape() == shape{{"batch", 2}, {"heads", 4}, {"tokens", 3}, {"keys", 6}});
    CHECK(scores.ir().dot.lhs_batch == std::vector<std::int64_t>{1, 2});
    CHECK(scores.ir().dot.rhs_batch == std::vector<std::int64_t>{3, 0});
    CHECK(scores.ir().dot.lhs_contracting == std::vector<std::int64_t>{3});
    CHECK(scores.ir().dot.rhs_contracting == std::vector<std::int64_t>{1});
}

TEST_CASE("element-wise ops align the rhs to the lhs's order by name") {
    graph g;
    g.bind(hidden(4), tokens(3));
    auto a = g.parameter(f32[hidden, tokens], "a");
    auto b = g.parameter(f32[tokens, hidden], "b");
    auto c = a + b;
    CHECK(c.shape() == a.shape());
    CHECK(c.ir().kind == op::add);
    // The rhs goes through a transpose node; the lhs is used as it is.
    const auto rhs = g[c.ir().operands[1]];
    CHECK(rhs.kind == op::transpose);
    CHECK(rhs.dims == a.shape());
    CHECK(c.ir().operands[0] == a.id());

    // Same order: no transpose.
    auto d = a * a;
    CHECK(d.ir().operands == std::vector<node_id>{a.id(), a.id()});

    auto m = lt(a, b);
    CHECK(m.ir().type == dtype::pred);
    CHECK(m.ir().direction == comparison::lt);
}

TEST_CASE("layout reduction and slicing ops infer extents") {
    graph g;
    g.bind(hidden(12), heads(3), tokens(5), batch(2), vocab(7));
    auto x = g.parameter(f32[hidden, tokens], "x");

    SECTION("split derives the unbound extent, merge multiplies back") {
        auto s = split<hidden, heads, head_dim>(x);
        CHECK(s.shape() == shape{{"heads", 3}, {"head_dim", 4}, {"tokens", 5}});
        CHECK(s.extent(head_dim) == 4);
        auto m = merge<heads, head_dim, hidden>(transpose<tokens, head_dim, heads>(s));
        CHECK(m.shape() == shape{{"tokens", 5}, {"hidden", 12}});
    }
    SECTION("broadcast appends, broadcast_to takes the target's order") {
        auto b = broadcast<batch>(x);
        CHECK(b.shape() == shape{{"hidden", 12}, {"tokens", 5}, {"batch", 2}});
        auto bias = g.parameter(f32[tokens], "bias");
        auto bt = broadcast_to(bias, b);
        CHECK(bt.shape() == b.shape());
        CHECK(bt.ir().axes == std::vector<std::int64_t>{1});
    }
    SECTION("rename keeps the extent under the new name") {
        auto r = rename<hidden, embed>(x);
        CHECK(r.shape() == shape{{"embed", 12}, {"tokens", 5}});
    }
    SECTION("reductions drop dimensions; mean divides by their extent") {
        CHECK(reduce_sum<tokens>(x).shape() == shape{{"hidden", 12}});
        CHECK(reduce_max<hidden, tokens>(x).shape().empty());
        auto am = argmax<hidden>(x);
        CHECK(am.ir().type == dtype::s32);
        CHECK(am.shape() == shape{{"tokens", 5}});
        CHECK(mean<hidden>(x).shape() == shape{{"tokens", 5}});
    }
    SECTION("slice, pad, concatenate and dynamic_slice change one extent") {
        CHECK(slice<tokens>(x, 1, 4).shape() == shape{{"hidden", 12}, {"tokens", 3}});
        CHECK(pad<tokens>(x, 0.0, 2, 1).shape() == shape{{"hidden", 12}, {"tokens", 8}});
        CHECK(pad<tokens>(x, 0.0, -1, -1).extent(tokens) == 3);
        CHECK(concatenate<tokens>(x, slice<tokens>(x, 0, 2)).extent(tokens) == 7);
        auto pos = g.parameter(s32[], "pos");
        CHECK(dynamic_slice<tokens>(x, pos, 2).shape() == shape{{"hidden", 12}, {"tokens", 2}});
        auto written = dynamic_update_slice<tokens>(x, slice<tokens>(x, 0, 1), pos);
        CHECK(written.shape() == x.shape());
    }
    SECTION("gather: the table's other dimensions, then the indices'") {
        auto wte = g.parameter(f32[vocab, hidden], "wte");
        auto ids = g.parameter(s32[tokens, batch], "ids");
        auto e = gather<vocab>(wte, ids);
        CHECK(e.shape() == shape{{"hidden", 12}, {"tokens", 5}, {"batch", 2}});
        CHECK(e.ir().axes == std::vector<std::int64_t>{0});
    }
    SECTION("all_gather multiplies the gathered extent by the group size") {
        auto ag = all_gather<tokens>(x, replica_groups::all(4));
        CHECK(ag.shape() == shape{{"hidden", 12}, {"tokens", 20}});
        CHECK(all_reduce_sum(x, replica_groups::all(4)).shape() == x.shape());
    }
}

TEST_CASE("outputs and aliases are recorded in order") {
    graph g;
    g.bind(hidden(4), tokens(6));
    auto cache = g.parameter(f32[hidden, tokens], "cache");
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto pos = g.parameter(s32[], "pos");
    auto sum = reduce_sum<tokens>(x);
    auto updated = dynamic_update_slice<tokens>(cache, slice<tokens>(x, 0, 1), pos);

    g.outputs(sum, updated);
    CHECK(g.outputs() == std::vector<node_id>{sum.id(), updated.id()});
    CHECK(g.aliases().empty());

    g.alias(1, cache);
    REQUIRE(g.aliases().size() == 1);
    CHECK(g.aliases()[0].output == 1);
    CHECK(g.aliases()[0].parameter_number == cache.ir().parameter_number);

    // Setting the outputs again drops aliases that referred to the old ones.
    g.outputs(updated);
    CHECK(g.outputs() == std::vector<node_id>{updated.id()});
    CHECK(g.aliases().empty());
}

TEST_CASE("nodes are appended operands first") {
    graph g;
    g.bind(hidden(4), tokens(3));
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto y = exp(x) + x;
    for (std::size_t i = 0; i < g.nodes().size(); ++i)
        for (auto operand : g.nodes()[i].operands) CHECK(static_cast<std::size_t>(operand) < i);
    CHECK(y.id() == static_cast<node_id>(g.nodes().size() - 1));
}

// --- run-time errors: the same mistakes as tests/compile_fail, with dynamic extents

TEST_CASE("dot: contracting dimensions whose extents differ") {
    graph g;
    g.bind(hidden(8), vocab(10), tokens(3), batch(2), embed(6));
    auto w = g.parameter(f32[hidden, vocab], "w");
    auto h = g.parameter(f32[hidden, tokens], "h");

    SECTION("one operand sliced") {
        auto msg = error_from([&] { (void)dot<hidden>(w, slice<hidden>(h, 0, 3)); });
        CHECK_THAT(msg, Contains("[scribe] dot:") && Contains("contract") &&
                            Contains("`hidden` (8) with `hidden` (3)"));
    }
    SECTION("one operand renamed") {
        auto e = g.parameter(f32[embed, vocab], "e");
        auto msg = error_from([&] { (void)dot<embed>(e, rename<hidden, embed>(h)); });
        CHECK_THAT(msg, Contains("[scribe] dot:") && Contains("`embed` (6) with `embed` (8)"));
    }
    SECTION("a batch dimension") {
        auto a = g.parameter(f32[hidden, tokens, batch], "a");
        auto b = g.parameter(f32[hidden, vocab, batch], "b");
        auto msg = error_from([&] { (void)dot<hidden, batched<batch>>(a, slice<batch>(b, 0, 1)); });
        CHECK_THAT(msg, Contains("[scribe] dot:") && Contains("batch") && Contains("`batch` (2) with `batch` (1)"));
    }
}

TEST_CASE("element-wise ops: a dimension's extents differ") {
    graph g;
    g.bind(hidden(4), tokens(5));
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto short_x = slice<tokens>(x, 0, 2);

    auto msg = error_from([&] { (void)(x + short_x); });
    CHECK_THAT(msg, Contains("[scribe] add:") && Contains("`tokens`") && Contains("extent 5 in lhs") &&
                        Contains("but 2 in rhs"));

    // Also when the rhs is in another order and must be aligned first.
    msg = error_from([&] { (void)(x * transpose<tokens, hidden>(short_x)); });
    CHECK_THAT(msg, Contains("[scribe] multiply:") && Contains("`tokens`") && Contains("5") && Contains("2"));

    auto pred_mask = lt(x, x);
    msg = error_from([&] { (void)select(pred_mask, x, short_x); });
    CHECK_THAT(msg, Contains("[scribe] select:") && Contains("`tokens`") && Contains("5") && Contains("2"));
}

TEST_CASE("split: the extents do not multiply out at run time") {
    graph g;
    g.bind(hidden(12), heads(5), tokens(2));
    auto x = g.parameter(f32[hidden, tokens], "x");

    auto msg = error_from([&] { (void)split<hidden, heads, head_dim>(x); });
    CHECK_THAT(msg, Contains("[scribe] split:") && Contains("`hidden` (12)") && Contains("`heads` (5)") &&
                        Contains("`head_dim`"));

    // Both bound, product wrong.
    g.bind(head_dim(3));
    msg = error_from([&] { (void)split<hidden, heads, head_dim>(x); });
    CHECK_THAT(msg, Contains("`hidden` (12)") && Contains("`heads` (5) x `head_dim` (3)"));

    // Neither known: the message says what to do.
    msg = error_from([&] { (void)split<tokens, keys, batch>(x); });
    CHECK_THAT(msg, Contains("[scribe] split:") && Contains("`keys`") && Contains("`batch`") &&
                        Contains("bind"));
}

TEST_CASE("merge and rename: a static target extent that the data does not have") {
    graph g;
    g.bind(heads(3), head_dim(4), hidden(12));
    auto x = g.parameter(f32[heads, head_dim], "x");
    auto msg = error_from([&] { (void)merge<heads, head_dim, embed.of<10>>(x); });
    CHECK_THAT(msg, Contains("[scribe] merge:") && Contains("`heads` x `head_dim` (12)") &&
                        Contains("`embed` (10)"));

    auto h = g.parameter(f32[hidden], "h");
    msg = error_from([&] { (void)rename<hidden, embed.of<5>>(h); });
    CHECK_THAT(msg, Contains("[scribe] rename:") && Contains("`hidden` has extent 12") &&
                        Contains("`embed` is static with 5"));
}

TEST_CASE("a static extent that conflicts with a binding") {
    graph g;
    g.bind(hidden(5));
    auto msg = error_from([&] { (void)g.parameter(f32[hidden.of<4>], "w"); });
    CHECK_THAT(msg, Contains("[scribe]") && Contains("`hidden`") && Contains("5") && Contains("4"));
    CHECK(g.parameter_count() == 0);

    // The other way round: the static extent binds first, a later binding conflicts.
    graph g2;
    (void)g2.parameter(f32[hidden.of<4>], "w");
    msg = error_from([&] { g2.bind(hidden(5)); });
    CHECK_THAT(msg, Contains("`hidden` is bound to 4, cannot bind it to 5"));
}

TEST_CASE("binding a dimension twice to different sizes") {
    graph g;
    g.bind(hidden(768));
    g.bind(hidden(768));  // the same size again is fine
    auto msg = error_from([&] { g.bind(hidden(1024)); });
    CHECK(msg == "[scribe] dimension `hidden` is bound to 768, cannot bind it to 1024");
    CHECK(g.bound("hidden") == 768);

    msg = error_from([&] { g.bind(vocab(0)); });
    CHECK_THAT(msg, Contains("`vocab`") && Contains("positive") && Contains("0"));
    CHECK_FALSE(g.bound("vocab").has_value());
}

TEST_CASE("an unbound dimension says how to bind it") {
    graph g;
    g.bind(hidden(4));
    auto msg = error_from([&] { (void)g.parameter(f32[hidden, tokens], "x"); });
    CHECK_THAT(msg, Contains("[scribe] parameter") && Contains("`tokens` has no extent") &&
                        Contains("tokens.of<N>") && Contains("g.bind(tokens(N))"));
    // It should also name the parameter, but graph::parameter moves the label into
    // one argument before another formats it: GCC prints "parameter ``". Make this a
    // CHECK once that is fixed.
    CHECK(msg.find("parameter `x`") != std::string::npos);

    auto x = g.parameter(f32[hidden], "x");
    msg = error_from([&] { (void)broadcast<batch>(x); });
    CHECK_THAT(msg, Contains("[scribe] broadcast") && Contains("`batch` has no extent") &&
                        Contains("g.bind(batch(N))"));
}

TEST_CASE("slice: a range outside the dimension") {
    graph g;
    g.bind(hidden(4), tokens(5));
    auto x = g.parameter(f32[hidden, tokens], "x");

    auto msg = error_from([&] { (void)slice<tokens>(x, 2, 9); });
    CHECK_THAT(msg, Contains("[scribe] slice:") && Contains("[2, 9)") && Contains("`tokens` of extent 5"));
    msg = error_from([&] { (void)slice<tokens>(x, 3, 3); });
    CHECK_THAT(msg, Contains("[3, 3)") && Contains("empty"));
    msg = error_from([&] { (void)slice<hidden>(x, -1, 2); });
    CHECK_THAT(msg, Contains("`hidden` of extent 4"));

    auto pos = g.parameter(s32[], "pos");
    msg = error_from([&] { (void)dynamic_slice<tokens>(x, pos, 9); });
    CHECK_THAT(msg, Contains("[scribe] dynamic_slice:") && Contains("size 9") && Contains("`tokens` of extent 5"));

    msg = error_from([&] { (void)pad<tokens>(x, 0.0, -3, -2); });
    CHECK_THAT(msg, Contains("[scribe] pad:") && Contains("`tokens`") && Contains("empty"));
}

TEST_CASE("dynamic_update_slice: an update that does not fit") {
    graph g;
    g.bind(hidden(4), tokens(5));
    auto cache = g.parameter(f32[hidden, tokens], "cache");
    auto pos = g.parameter(s32[], "pos");

    SECTION("larger along the updated dimension") {
        auto big = concatenate<tokens>(cache, cache);  // tokens = 10
        auto msg = error_from([&] { (void)dynamic_update_slice<tokens>(cache, big, pos); });
        CHECK_THAT(msg, Contains("[scribe] dynamic_update_slice:") && Contains("`tokens`=10") &&
                            Contains("larger than the operand's 5"));
    }
    SECTION("another dimension's extent differs") {
        auto narrow = slice<hidden>(cache, 0, 2);
        auto msg = error_from([&] { (void)dynamic_update_slice<tokens>(cache, narrow, pos); });
        CHECK_THAT(msg, Contains("[scribe] dynamic_update_slice:") && Contains("`hidden`") &&
                            Contains("extent 4 in the operand") && Contains("2 in the update"));
    }
}

TEST_CASE("concatenate: the other dimensions' extents differ") {
    graph g;
    g.bind(hidden(4), tokens(5));
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto msg = error_from([&] { (void)concatenate<tokens>(x, x, slice<hidden>(x, 0, 2)); });
    CHECK_THAT(msg, Contains("[scribe] concatenate:") && Contains("`hidden`") &&
                        Contains("extent 4 in operand 0") && Contains("2 in operand 2"));
}

TEST_CASE("alias: an output and a parameter of different shapes") {
    graph g;
    g.bind(hidden(4), tokens(5));
    auto cache = g.parameter(f32[hidden, tokens], "cache");
    auto half_cache = g.parameter(f16[hidden, tokens], "half_cache");
    g.outputs(slice<tokens>(cache, 0, 2), cache + cache);

    auto msg = error_from([&] { g.alias(0, cache); });
    CHECK_THAT(msg, Contains("[scribe] alias: output 0 is f32[hidden=4, tokens=2]") &&
                        Contains("parameter `cache` is f32[hidden=4, tokens=5]"));
    msg = error_from([&] { g.alias(1, half_cache); });
    CHECK_THAT(msg, Contains("f32[hidden=4, tokens=5]") && Contains("`half_cache` is f16[hidden=4, tokens=5]"));
    msg = error_from([&] { g.alias(2, cache); });
    CHECK_THAT(msg, Contains("output 2 does not exist") && Contains("has 2"));

    g.alias(1, cache);
    msg = error_from([&] { g.alias(1, cache); });
    CHECK_THAT(msg, Contains("aliased twice"));
    CHECK(g.aliases().size() == 1);

    auto not_param = exp(cache);
    g.outputs(not_param);
    msg = error_from([&] { g.alias(0, not_param); });
    CHECK_THAT(msg, Contains("only a parameter"));
}

TEST_CASE("operands from two different graphs") {
    graph g1("first"), g2("second");
    g1.bind(hidden(4), vocab(3));
    g2.bind(hidden(4), vocab(3));
    auto a = g1.parameter(f32[hidden, vocab], "a");
    auto b = g2.parameter(f32[hidden, vocab], "b");
    auto ids = g2.parameter(s32[hidden], "ids");

    CHECK_THAT(error_from([&] { (void)(a + b); }), Contains("[scribe] add:") && Contains("different graphs"));
    CHECK_THAT(error_from([&] { (void)dot<hidden, batched<vocab>>(a, b); }), Contains("[scribe] dot:") && Contains("different graphs"));
    CHECK_THAT(error_from([&] { (void)gather<vocab>(rename<hidden, embed>(a), ids); }),
               Contains("[scribe] gather:") && Contains("different graphs"));
    CHECK_THAT(error_from([&] { (void)concatenate<vocab>(a, b); }),
               Contains("[scribe] concatenate:") && Contains("different graphs"));
    CHECK_THAT(error_from([&] { g1.outputs(b); }), Contains("[scribe] outputs:") && Contains("different graphs"));
    // Nothing was appended to either graph by the failed calls.
    CHECK(g2.nodes().size() == 2);
}

TEST_CASE("other malformed graphs") {
    graph g;
    g.bind(hidden(4));
    auto x = g.parameter(f32[hidden], "x");

    CHECK_THAT(error_from([&] { (void)g.parameter(f32[hidden], "x"); }),
               Contains("[scribe] parameter:") && Contains("`x` is used twice"));
    const double three[] = {1, 2, 3};
    CHECK_THAT(error_from([&] { (void)g.constant(f32[hidden], three); }),
               Contains("[scribe] constant:") && Contains("f32[hidden=4] needs 4 values, got 3"));
    CHECK_THAT(error_from([&] { g.set_outputs({}); }), Contains("at least one output"));

    replica_groups overlapping{{{0, 1}, {1, 2}}};
    CHECK_THAT(error_from([&] { (void)all_reduce_sum(x, overlapping); }),
               Contains("[scribe] all_reduce:") && Contains("replica 1"));
    replica_groups ragged{{{0, 1}, {2}}};
    CHECK_THAT(error_from([&] { (void)all_gather<hidden>(x, ragged); }),
               Contains("[scribe] all_gather:") && Contains("same size"));
}

TEST_CASE("a C++ number joins an integer tensor only if the dtype can hold it") {
    graph g;
    g.bind(hidden(3));
    auto x = g.parameter(s32[hidden], "x");
    CHECK((x * 2).shape() == x.shape());
    CHECK_THROWS_WITH(x * 0.5, Catch::Contains("0.5") && Catch::Contains("not a value of s32"));
    auto b = g.parameter(u8[hidden], "b");
    CHECK_THROWS_WITH(b + 300, Catch::Contains("300") && Catch::Contains("u8"));
}

TEST_CASE("a scalar from another graph is refused before it is used") {
    graph g1("first"), g2("second");
    g1.bind(hidden(3));
    auto x = g1.parameter(f32[hidden], "x");
    auto s = g2.parameter(f32[], "s");
    const auto before = g1.nodes().size();
    CHECK_THROWS_WITH(x + s, Catch::Contains("different graphs") && Catch::Contains("`first`") &&
                                 Catch::Contains("`second`"));
    CHECK(g1.nodes().size() == before);
}

}  // namespace test_graph
