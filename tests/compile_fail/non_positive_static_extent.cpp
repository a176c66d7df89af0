// A static extent of 0.
// expect: [scribe] a static extent must be positive
// expect: scribe::static_dim<hidden, 0>
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden.of<0>], "x");
    (void)x;
}
