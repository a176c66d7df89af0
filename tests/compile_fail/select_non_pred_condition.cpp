// select with an s32 mask as its condition: the condition must be pred.
// expect: unsupported_dtype<scribe::op_tag<scribe::op::select>, scribe::s32>
// expect: [scribe] the op does not take this dtype
#include <scribe/scribe.hpp>

SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto mask = g.parameter(s32[tokens], "mask");
    auto a = g.parameter(f32[tokens], "a");
    auto b = g.parameter(f32[tokens], "b");
    auto y = select(mask, a, b);
    (void)y;
}
