// shift_left of pred tensors: shifts take integers only.
// expect: unsupported_dtype<scribe::op_tag<scribe::op::shift_left>, scribe::pred>
// expect: [scribe] the op does not take this dtype
#include <scribe/scribe.hpp>

SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto p = g.parameter(pred[tokens], "p");
    auto y = shift_left(p, p);
    (void)y;
}
