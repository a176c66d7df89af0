// iota counting along a dimension that is not in its shape.
// expect: [scribe] the op names a dimension the tensor does not have
// expect: dimension_not_in_tensor<scribe::op_tag<scribe::op::iota>, tokens, scribe::dims<scribe::static_dim<hidden, 4> > >
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.iota(s32[hidden.of<4>], tokens);
    (void)x;
}
