// split<embed, heads, head_dim> of a tensor without `embed`.
// expect: dimension_not_in_tensor<scribe::op_tag<scribe::op::reshape>, embed, scribe::dims<hidden, tokens> >
// expect: [scribe] the op names a dimension the tensor does not have
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(embed);
SCRIBE_DIM(heads);
SCRIBE_DIM(head_dim);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto y = split<embed, heads, head_dim>(x);
    (void)y;
}
