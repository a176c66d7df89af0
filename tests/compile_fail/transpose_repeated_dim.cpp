// transpose<hidden, hidden> of [hidden, tokens]: right rank, but `tokens` is lost.
// expect: transpose_not_a_permutation<scribe::dims<hidden, hidden>, scribe::dims<hidden, tokens> >
// expect: [scribe] transpose: the target order is not a permutation
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto y = transpose<hidden, hidden>(x);
    (void)y;
}
