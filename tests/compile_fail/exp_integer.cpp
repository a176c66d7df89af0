// exp of an s32 tensor: transcendental ops take floats only.
// expect: unsupported_dtype<scribe::op_tag<scribe::op::exp>, scribe::s32>
// expect: [scribe] the op does not take this dtype
#include <scribe/scribe.hpp>

SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(s32[tokens], "x");
    auto y = exp(x);
    (void)y;
}
