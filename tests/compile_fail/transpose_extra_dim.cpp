// transpose<tokens, hidden, batch> of [hidden, tokens]: `batch` is not in the tensor.
// expect: transpose_not_a_permutation<scribe::dims<tokens, hidden, batch>, scribe::dims<hidden, tokens> >
// expect: [scribe] transpose: the target order is not a permutation
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);
SCRIBE_DIM(batch);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto y = transpose<tokens, hidden, batch>(x);
    (void)y;
}
