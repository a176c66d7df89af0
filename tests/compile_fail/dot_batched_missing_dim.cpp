// batched<...> names a dimension that one operand lacks.
// expect: [scribe] dot: a batched dimension is not in both operands
// expect: dot_batch_dimension_missing<batch, scribe::dims<batch, tokens, hidden>, scribe::dims<hidden, vocab>
#include <scribe/scribe.hpp>

SCRIBE_DIM(batch);
SCRIBE_DIM(tokens);
SCRIBE_DIM(hidden);
SCRIBE_DIM(vocab);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[batch, tokens, hidden], "x");
    auto w = g.parameter(f32[hidden, vocab], "w");
    g.outputs(dot<hidden, batched<batch>>(x, w));
}
