// f32[hidden.of<4>] + f32[hidden.of<5>]: one dimension, two static extents.
// expect: static_extent_conflict<scribe::dims<scribe::static_dim<hidden, 4> >, scribe::dims<scribe::static_dim<hidden, 5> > >
// expect: [scribe] one dimension has two different static extents
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);

using namespace scribe;

int main() {
    graph g;
    auto a = g.parameter(f32[hidden.of<4>], "a");
    auto b = g.parameter(f32[hidden.of<5>], "b");
    auto c = a + b;
    (void)c;
}
