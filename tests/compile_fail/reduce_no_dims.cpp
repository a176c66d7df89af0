// reduce_sum<>() with no dimension named: almost certainly a forgotten argument.
// expect: [scribe] name at least one dimension
// expect: no_dimension_named<scribe::op_tag<scribe::op::reduce> >
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto s = reduce_sum<>(x);
    (void)s;
}
