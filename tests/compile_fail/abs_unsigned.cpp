// abs of a u8 tensor: abs and neg take signed integers and floats (as XLA does).
// expect: unsupported_dtype<scribe::op_tag<scribe::op::abs>, scribe::u8>
// expect: [scribe] the op does not take this dtype
#include <scribe/scribe.hpp>

SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(u8[tokens], "x");
    auto y = abs(x);
    (void)y;
}
