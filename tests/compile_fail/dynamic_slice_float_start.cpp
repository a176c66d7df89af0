// dynamic_slice with an f32 start index: indices must be integers.
// expect: unsupported_dtype<scribe::op_tag<scribe::op::dynamic_slice>, scribe::f32>
// expect: [scribe] the op does not take this dtype
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden, tokens], "x");
    auto start = g.parameter(f32[], "start");
    auto y = dynamic_slice<tokens>(x, start, 1);
    (void)y;
}
