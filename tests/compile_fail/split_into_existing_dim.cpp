// split<hidden, heads, tokens> of [hidden, tokens]: `tokens` would appear twice.
// expect: dimension_already_in_tensor<scribe::op_tag<scribe::op::reshape>, scribe::dims<heads, tokens>, scribe::dims<hidden, tokens> >
// expect: [scribe] the op adds a dimension the tensor already has
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(heads);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto y = split<hidden, heads, tokens>(x);
    (void)y;
}
