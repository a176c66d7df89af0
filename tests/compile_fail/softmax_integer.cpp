// softmax of s32 logits.
// expect: [scribe] the op does not take this dtype
// expect: unsupported_dtype<scribe::diagnose::composite_op<scribe::diagnose::op_name::softmax>, scribe::s32>
#include <scribe/scribe.hpp>

SCRIBE_DIM(vocab);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(s32[vocab], "x");
    auto p = softmax<vocab>(x);
    (void)p;
}
