// dot of an f16 weight with f32 activations: Scribe never promotes.
// expect: dtype_mismatch<scribe::op_tag<scribe::op::dot>, scribe::f16, scribe::f32>
// expect: [scribe] dtype mismatch
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(vocab);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto w = g.parameter(f16[hidden, vocab], "w");
    auto h = g.parameter(f32[hidden, tokens], "h");
    auto logits = dot<hidden>(w, h);
    (void)logits;
}
