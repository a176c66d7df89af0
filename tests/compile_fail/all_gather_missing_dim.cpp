// all_gather<vocab> of a tensor without `vocab`.
// expect: dimension_not_in_tensor<scribe::op_tag<scribe::op::all_gather>, vocab, scribe::dims<hidden, tokens> >
// expect: [scribe] the op names a dimension the tensor does not have
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);
SCRIBE_DIM(vocab);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto y = all_gather<vocab>(x, replica_groups::all(2));
    (void)y;
}
