// dot contracting `hidden`, static 768 on one side and 1024 on the other.
// expect: static_extent_conflict
// expect: [scribe] one dimension has two different static extents
// expect: scribe::static_dim<hidden, 768>
// expect: scribe::static_dim<hidden, 1024>
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(vocab);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    g.bind(vocab(8), tokens(4));
    auto w = g.parameter(f32[hidden.of<768>, vocab], "w");
    auto h = g.parameter(f32[hidden.of<1024>, tokens], "h");
    auto logits = dot<hidden>(w, h);
    (void)logits;
}
