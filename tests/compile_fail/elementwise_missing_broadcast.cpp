// Adding a bias [hidden] to [hidden, tokens] without broadcast_to: ranks differ.
// expect: elementwise_dims_differ<scribe::op_tag<scribe::op::mul>
// expect: scribe::dims<hidden, tokens>
// expect: scribe::dims<hidden>
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto gamma = g.parameter(f32[hidden], "gamma");
    auto y = x * gamma;
    (void)y;
}
