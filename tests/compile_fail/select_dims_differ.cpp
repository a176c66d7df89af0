// select whose condition has dimensions the branches lack.
// expect: elementwise_dims_differ<scribe::op_tag<scribe::op::select>, scribe::dims<tokens, batch>, scribe::dims<tokens> >
// expect: [scribe] element-wise op: the operands' dimensions differ
#include <scribe/scribe.hpp>

SCRIBE_DIM(tokens);
SCRIBE_DIM(batch);

using namespace scribe;

int main() {
    graph g;
    auto mask = g.parameter(pred[tokens, batch], "mask");
    auto a = g.parameter(f32[tokens], "a");
    auto b = g.parameter(f32[tokens], "b");
    auto y = select(mask, a, b);
    (void)y;
}
