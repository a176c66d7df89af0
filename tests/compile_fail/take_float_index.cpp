// take<tokens> at an index computed in the graph as a float.
// expect: unsupported_dtype<scribe::diagnose::composite_op<scribe::diagnose::op_name::take>, scribe::f32>
// expect: [scribe] the op does not take this dtype
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    g.bind(hidden(4), tokens(3));
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto i = g.parameter(f32[], "i");
    auto y = take<tokens>(x, i);
    (void)y;
}
