// take<batch> of a [hidden, tokens] tensor.
// expect: dimension_not_in_tensor<scribe::diagnose::composite_op<scribe::diagnose::op_name::take>, batch, scribe::dims<hidden, tokens> >
// expect: [scribe] the op names a dimension the tensor does not have
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);
SCRIBE_DIM(batch);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto y = take<batch>(x, 0);
    (void)y;
}
