// Merging heads=12 x head_dim=64 (= 768) into a static hidden=1024.
// expect: extents_do_not_multiply_out<scribe::dims<heads, head_dim>, scribe::static_dim<hidden, 1024>
// expect: std::integer_sequence<long int, 12, 64, 1024>
// expect: [scribe] split/merge: the static extents do not multiply out
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(heads);
SCRIBE_DIM(head_dim);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    g.bind(tokens(4));
    auto x = g.parameter(f32[heads.of<12>, head_dim.of<64>, tokens], "x");
    auto y = merge<heads, head_dim, hidden.of<1024>>(x);
    (void)y;
}
