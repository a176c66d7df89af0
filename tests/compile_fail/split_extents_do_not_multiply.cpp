// Splitting a static hidden=768 into 10 heads: 768 is not a multiple of 10.
// expect: extents_do_not_multiply_out<scribe::static_dim<hidden, 768>, scribe::dims<scribe::static_dim<heads, 10>, head_dim>
// expect: [scribe] split/merge: the static extents do not multiply out
// expect: std::integer_sequence<long int, 768, 10, -1>
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(heads);
SCRIBE_DIM(head_dim);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    g.bind(tokens(4));
    auto x = g.parameter(f32[hidden.of<768>, tokens], "x");
    auto y = split<hidden, heads.of<10>, head_dim>(x);
    (void)y;
}
