// The LM head of transformers-neuronx's PyHLO example, in Scribe.
//
// PyHLO writes every result shape by hand and numbers dimensions by position:
//     logits = dtype[vocab_size, n_active_tokens, batch_size].Dot(weight, hidden, ...)
// Here the shapes are types with names, the result shape is inferred, and
// contracting the wrong dimension does not compile.
//
// Usage: lm_head [OUTPUT_DIR]   (default: current directory)
// Writes lm_head.hlo and lm_head.pb and prints a summary.
#include <cstdio>
#include <filesystem>

#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(vocab);
SCRIBE_DIM(n_active_tokens);
SCRIBE_DIM(batch);

using namespace scribe;

// hidden[hidden, n_active_tokens, batch] and weight[hidden, vocab] to
// logits[vocab, n_active_tokens, batch].
auto lm_head(graph& g) {
    auto h = g.parameter(f32[hidden, n_active_tokens, batch], "hidden");
    auto w = g.parameter(f32[hidden, vocab], "weight");
    return dot<hidden>(w, h);
}

int main(int argc, char** argv) try {
    const std::filesystem::path out = argc > 1 ? argv[1] : ".";
    graph g("lm_head");
    g.bind(hidden(64), vocab(96), n_active_tokens(5), batch(2));
    auto logits = lm_head(g);
    g.outputs(logits);
    const auto files = hlo::write(g, out, "lm_head");

    std::printf("lm_head: logits %s\n", to_string(logits.shape()).c_str());
    std::printf("  HLO text:  %s (%ju bytes)\n", files.text.c_str(),
                static_cast<std::uintmax_t>(std::filesystem::file_size(files.text)));
    std::printf("  HLO proto: %s (%ju bytes)\n", files.proto.c_str(),
                static_cast<std::uintmax_t>(std::filesystem::file_size(files.proto)));
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
