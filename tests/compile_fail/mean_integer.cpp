// mean of an s32 tensor: the mean is defined for floats only.
// expect: [scribe] the op does not take this dtype
// expect: unsupported_dtype<scribe::diagnose::composite_op<scribe::diagnose::op_name::mean>, scribe::s32>
#include <scribe/scribe.hpp>

SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(s32[tokens], "x");
    auto m = mean<tokens>(x);
    (void)m;
}
