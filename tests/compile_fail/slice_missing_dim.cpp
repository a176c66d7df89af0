// slice<batch> of a [hidden, tokens] tensor.
// expect: dimension_not_in_tensor<scribe::op_tag<scribe::op::slice>, batch, scribe::dims<hidden, tokens> >
// expect: [scribe] the op names a dimension the tensor does not have
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);
SCRIBE_DIM(batch);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto y = slice<batch>(x, 0, 1);
    (void)y;
}
