// merge<heads, head_dim, hidden> of a tensor that has neither heads nor head_dim.
// expect: dimension_not_in_tensor<scribe::op_tag<scribe::op::reshape>, scribe::dims<heads, head_dim>, scribe::dims<hidden, tokens> >
// expect: [scribe] the op names a dimension the tensor does not have
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(heads);
SCRIBE_DIM(head_dim);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto y = merge<heads, head_dim, hidden>(x);
    (void)y;
}
