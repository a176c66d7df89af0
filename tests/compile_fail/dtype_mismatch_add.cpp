// f32 + f16 without convert<...>: there is no implicit promotion.
// expect: dtype_mismatch<scribe::op_tag<scribe::op::add>, scribe::f32, scribe::f16>
// expect: [scribe] dtype mismatch: convert<dtype>(x) one operand first
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);

using namespace scribe;

int main() {
    graph g;
    auto a = g.parameter(f32[hidden], "a");
    auto b = g.parameter(f16[hidden], "b");
    auto c = a + b;
    (void)c;
}
