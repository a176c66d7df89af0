// neg of a pred tensor: pred has no arithmetic.
// expect: unsupported_dtype<scribe::op_tag<scribe::op::neg>, scribe::pred>
// expect: [scribe] the op does not take this dtype
#include <scribe/scribe.hpp>

SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(pred[tokens], "x");
    auto y = -x;
    (void)y;
}
