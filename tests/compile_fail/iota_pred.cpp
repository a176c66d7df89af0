// iota in pred: there is nothing to count in.
// expect: unsupported_dtype<scribe::op_tag<scribe::op::iota>, scribe::pred>
// expect: [scribe] the op does not take this dtype
#include <scribe/scribe.hpp>

SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    g.bind(tokens(4));
    auto y = g.iota(pred[tokens], tokens);
    (void)y;
}
