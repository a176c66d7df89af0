// rename<hidden, embed.of<5>> of a static hidden=4: the new static extent disagrees.
// expect: static_extent_conflict<scribe::dims<scribe::static_dim<hidden, 4> >, scribe::dims<scribe::static_dim<embed, 5> > >
// expect: [scribe] one dimension has two different static extents
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(embed);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden.of<4>], "x");
    auto y = rename<hidden, embed.of<5>>(x);
    (void)y;
}
