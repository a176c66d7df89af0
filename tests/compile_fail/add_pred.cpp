// add of two pred tensors: pred has no arithmetic; compare and select it.
// expect: unsupported_dtype<scribe::op_tag<scribe::op::add>, scribe::pred>
// expect: [scribe] the op does not take this dtype
#include <scribe/scribe.hpp>

SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(pred[tokens], "x");
    auto y = x + x;
    (void)y;
}
