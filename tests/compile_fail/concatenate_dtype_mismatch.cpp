// Concatenating an f32 and a bf16 tensor.
// expect: dtype_mismatch<scribe::op_tag<scribe::op::concatenate>, scribe::f32, scribe::bf16>
// expect: [scribe] dtype mismatch
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto a = g.parameter(f32[hidden, tokens], "a");
    auto b = g.parameter(bf16[hidden, tokens], "b");
    auto y = concatenate<tokens>(a, b);
    (void)y;
}
