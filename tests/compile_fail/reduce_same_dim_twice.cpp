// reduce_max<tokens, tokens>: one dimension named twice.
// expect: duplicate_dimension_in_shape<tokens, scribe::dims<tokens, tokens> >
// expect: [scribe] a shape names the same dimension twice
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto s = reduce_max<tokens, tokens>(x);
    (void)s;
}
