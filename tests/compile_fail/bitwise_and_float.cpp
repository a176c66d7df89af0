// bitwise_and of two f32 tensors: the bitwise ops take integers and pred only
// (bitcast_convert<u32>(x) first to work on a float's bits).
// expect: unsupported_dtype<scribe::op_tag<scribe::op::bitwise_and>, scribe::f32>
// expect: [scribe] the op does not take this dtype
#include <scribe/scribe.hpp>

SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[tokens], "x");
    auto y = bitwise_and(x, x);
    (void)y;
}
