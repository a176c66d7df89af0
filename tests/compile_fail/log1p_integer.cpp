// log1p of an s32 tensor: log1p (like log) takes floats only.
// expect: unsupported_dtype<scribe::op_tag<scribe::op::log1p>, scribe::s32>
// expect: [scribe] the op does not take this dtype
#include <scribe/scribe.hpp>

SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(s32[tokens], "x");
    auto y = log1p(x);
    (void)y;
}
