// reduce_sum<vocab> of a [hidden, tokens] tensor.
// expect: dimension_not_in_tensor<scribe::op_tag<scribe::op::reduce>, vocab, scribe::dims<hidden, tokens> >
// expect: [scribe] the op names a dimension the tensor does not have
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);
SCRIBE_DIM(vocab);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto s = reduce_sum<vocab>(x);
    (void)s;
}
