// Adding [hidden, tokens] to [hidden, vocab]: no implicit broadcasting.
// expect: elementwise_dims_differ<scribe::op_tag<scribe::op::add>
// expect: [scribe] element-wise op: the operands' dimensions differ
// expect: scribe::dims<hidden, tokens>
// expect: scribe::dims<hidden, vocab>
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);
SCRIBE_DIM(vocab);

using namespace scribe;

int main() {
    graph g;
    auto a = g.parameter(f32[hidden, tokens], "a");
    auto b = g.parameter(f32[hidden, vocab], "b");
    auto c = a + b;
    (void)c;
}
