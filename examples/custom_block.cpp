// A small block written by a user of Scribe: layer norm, then a GELU MLP, with a
// residual connection — the shape of a transformer's feed-forward half.
//
//     y = x + W_out · gelu(W_in · layer_norm(x) + b_in) + b_out
//
// Every helper below is generic over the dtype and the other dimensions: the
// compiler infers each result's dimensions by name.
//
// Usage: custom_block [OUTPUT_DIR]   (default: current directory)
// Writes custom_block.hlo and custom_block.pb and prints a summary.
#include <cstdio>
#include <filesystem>
#include <numbers>

#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(ffn);
SCRIBE_DIM(tokens);
SCRIBE_DIM(batch);

using namespace scribe;

// Normalises x over `hidden`, then scales and shifts by gamma[hidden] and beta[hidden].
template <class T, class... S, class G>
auto layer_norm(const tensor<T, S...>& x, const G& gamma, const G& beta, double eps) {
    auto centered = x - broadcast_to(mean<hidden>(x), x);
    auto variance = mean<hidden>(centered * centered);
    auto normed = centered * broadcast_to(rsqrt(variance + eps), x);
    return normed * broadcast_to(gamma, x) + broadcast_to(beta, x);
}

// GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
template <Tensor X>
auto gelu(const X& x) {
    const double k = std::sqrt(2.0 / std::numbers::pi);
    return x * 0.5 * (tanh((x + x * x * x * 0.044715) * k) + 1.0);
}

// The block, for x[hidden, tokens, batch].
template <Tensor X>
auto feed_forward_block(graph& g, const X& x) {
    using T = typename X::dtype_type;
    auto gamma = g.parameter(T{}[hidden], "ln.weight");
    auto beta = g.parameter(T{}[hidden], "ln.bias");
    auto w_in = g.parameter(T{}[hidden, ffn], "mlp.w_in");
    auto b_in = g.parameter(T{}[ffn], "mlp.b_in");
    auto w_out = g.parameter(T{}[ffn, hidden], "mlp.w_out");
    auto b_out = g.parameter(T{}[hidden], "mlp.b_out");

    auto h = dot<hidden>(w_in, layer_norm(x, gamma, beta, 1e-5));  // [ffn, tokens, batch]
    auto a = gelu(h + broadcast_to(b_in, h));
    auto y = dot<ffn>(w_out, a);                                    // [hidden, tokens, batch]
    return x + y + broadcast_to(b_out, y);
}

int main(int argc, char** argv) try {
    const std::filesystem::path out = argc > 1 ? argv[1] : ".";
    graph g("custom_block");
    g.bind(hidden(48), ffn(80), tokens(7), batch(2));
    auto x = g.parameter(f32[hidden, tokens, batch], "x");
    auto y = feed_forward_block(g, x);
    g.outputs(y);
    const auto files = hlo::write(g, out, "custom_block");

    std::printf("custom_block: %zu graph nodes, %lld parameters, output %s\n", g.nodes().size(),
                static_cast<long long>(g.parameter_count()), to_string(y.shape()).c_str());
    std::printf("  HLO text:  %s\n  HLO proto: %s\n", files.text.c_str(), files.proto.c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
