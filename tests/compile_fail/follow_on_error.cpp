// A rejected op's result used by more code: one error, the one that matters (before,
// the rejected dot returned void and every later use added an error of its own).
// expect: [scribe] dot: cannot contract a dimension that is not in both operands
// expect: dot_cannot_contract<vocab,
// errors: 1
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(vocab);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto w = g.parameter(f32[hidden, vocab], "w");
    auto h = g.parameter(f32[hidden, tokens], "h");
    auto logits = dot<vocab>(w, h);
    auto p = softmax<vocab>(logits);
    auto best = argmax<vocab>(p);
    g.outputs(p, best, transpose<tokens, vocab>(p));
}
