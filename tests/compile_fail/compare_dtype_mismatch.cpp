// Comparing s32 indices with s64 ones.
// expect: dtype_mismatch<scribe::op_tag<scribe::op::compare>, scribe::s32, scribe::s64>
// expect: [scribe] dtype mismatch
#include <scribe/scribe.hpp>

SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto a = g.parameter(s32[tokens], "a");
    auto b = g.parameter(s64[tokens], "b");
    auto c = lt(a, b);
    (void)c;
}
