// rename<hidden, tokens> of a tensor that already has `tokens`.
// expect: dimension_already_in_tensor<scribe::op_tag<scribe::op::reshape>, tokens, scribe::dims<hidden, tokens> >
// expect: [scribe] the op adds a dimension the tensor already has
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto y = rename<hidden, tokens>(x);
    (void)y;
}
