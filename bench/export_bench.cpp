// How long building a decoder-sized graph and exporting it takes: graph
// construction, lowering, HLO text and HloModuleProto, for a 12-layer stack of
// GPT-2-shaped blocks (attention projections, softmax, GELU MLP, layer norms).
//
// Usage: export_bench [REPEATS]   prints the median of each phase in milliseconds.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(hidden_out);
SCRIBE_DIM(ffn);
SCRIBE_DIM(tokens);
SCRIBE_DIM(keys);
SCRIBE_DIM(heads);
SCRIBE_DIM(head_dim);

using namespace scribe;

template <class X>
auto norm(graph& g, const X& x, const std::string& p) {
    auto c = x - broadcast_to(mean<hidden>(x), x);
    auto y = c * broadcast_to(rsqrt(mean<hidden>(c * c) + 1e-5), x);
    return y * broadcast_to(g.parameter(f32[hidden], p + ".g"), x) + broadcast_to(g.parameter(f32[hidden], p + ".b"), x);
}

template <class X>
auto block(graph& g, const X& x, int layer) {
    const std::string p = "h." + std::to_string(layer);
    auto h = norm(g, x, p + ".ln_1");
    auto proj = [&](const char* n) {
        return split<hidden_out, heads, head_dim>(dot<hidden>(g.parameter(f32[hidden, hidden_out], p + n), h));
    };
    auto q = proj(".q");
    auto k = rename<tokens, keys>(proj(".k"));
    auto v = rename<tokens, keys>(proj(".v"));
    auto scores = softmax<keys>(dot<head_dim, batched<heads>>(q, k) * 0.125);   // [heads, tokens, keys]
    auto ctx = merge<heads, head_dim, hidden_out>(dot<keys, batched<heads>>(scores, v));  // [tokens, hidden_out]
    auto attn = dot<hidden_out>(g.parameter(f32[hidden_out, hidden], p + ".o"), ctx);  // [hidden, tokens]
    auto r = x + attn;
    auto m = dot<hidden>(g.parameter(f32[hidden, ffn], p + ".fc"), norm(g, r, p + ".ln_2"));
    auto a = m * 0.5 * (tanh((m + m * m * m * 0.044715) * 0.7978845608) + 1.0);
    return r + dot<ffn>(g.parameter(f32[ffn, hidden], p + ".proj"), a);
}

int main(int argc, char** argv) {
    const int repeats = argc > 1 ? std::atoi(argv[1]) : 5;
    using clock = std::chrono::steady_clock;
    std::vector<double> t_build, t_lower, t_text, t_proto;
    std::size_t nodes = 0, text_bytes = 0, proto_bytes = 0;
    for (int r = 0; r < repeats; ++r) {
        const auto t0 = clock::now();
        graph g("decoder");
        g.bind(hidden(768), hidden_out(768), ffn(3072), tokens(128), heads(12));
        auto x = g.parameter(f32[hidden, tokens], "x");
        auto y = block(g, x, 0);
        for (int l = 1; l < 12; ++l) y = block(g, y, l);
        g.outputs(y);
        const auto t1 = clock::now();
        const auto m = hlo::lower(g);
        const auto t2 = clock::now();
        const auto text = hlo::to_text(m);
        const auto t3 = clock::now();
        const auto proto = hlo::to_proto(m);
        const auto t4 = clock::now();
        auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
        t_build.push_back(ms(t0, t1));
        t_lower.push_back(ms(t1, t2));
        t_text.push_back(ms(t2, t3));
        t_proto.push_back(ms(t3, t4));
        nodes = g.nodes().size();
        text_bytes = text.size();
        proto_bytes = proto.size();
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    std::printf("12-layer GPT-2-shaped graph: %zu nodes, HLO text %zu bytes, proto %zu bytes\n", nodes, text_bytes,
                proto_bytes);
    std::printf("median of %d: build %.2f ms, lower %.2f ms, text %.2f ms, proto %.2f ms\n", repeats,
                median(t_build), median(t_lower), median(t_text), median(t_proto));
    return nodes == 0;
}
