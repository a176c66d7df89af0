// broadcast_to a target that lacks one of x's dimensions (`vocab`).
// expect: dimension_not_in_tensor<scribe::op_tag<scribe::op::broadcast>, vocab, scribe::dims<hidden, tokens> >
// expect: [scribe] the op names a dimension the tensor does not have
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);
SCRIBE_DIM(vocab);

using namespace scribe;

int main() {
    graph g;
    auto bias = g.parameter(f32[vocab], "bias");
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto y = broadcast_to(bias, x);
    (void)y;
}
