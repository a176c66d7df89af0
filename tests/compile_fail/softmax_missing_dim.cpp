// softmax over a dimension the tensor lacks: the diagnostic names softmax (the op
// written), not the reduce it is made of.
// expect: [scribe] the op names a dimension the tensor does not have
// expect: dimension_not_in_tensor<scribe::diagnose::composite_op<scribe::diagnose::op_name::softmax>, vocab, scribe::dims<hidden, tokens>
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);
SCRIBE_DIM(vocab);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto p = softmax<vocab>(x);
    g.outputs(p * p);
}
