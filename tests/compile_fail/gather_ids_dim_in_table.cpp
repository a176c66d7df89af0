// gather<vocab> with ids[hidden] from a [vocab, hidden] table: the result would
// have `hidden` twice.
// expect: dimension_already_in_tensor<scribe::op_tag<scribe::op::gather>, hidden, scribe::dims<hidden> >
// expect: [scribe] the op adds a dimension the tensor already has
#include <scribe/scribe.hpp>

SCRIBE_DIM(vocab);
SCRIBE_DIM(hidden);

using namespace scribe;

int main() {
    graph g;
    auto wte = g.parameter(f32[vocab, hidden], "wte");
    auto ids = g.parameter(s32[hidden], "ids");
    auto e = gather<vocab>(wte, ids);
    (void)e;
}
