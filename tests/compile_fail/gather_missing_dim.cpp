// gather<tokens> on a [vocab, hidden] table: the indexed dimension is not in it.
// expect: dimension_not_in_tensor<scribe::op_tag<scribe::op::gather>, tokens, scribe::dims<vocab, hidden> >
// expect: [scribe] the op names a dimension the tensor does not have
#include <scribe/scribe.hpp>

SCRIBE_DIM(vocab);
SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto wte = g.parameter(f32[vocab, hidden], "wte");
    auto ids = g.parameter(s32[tokens], "ids");
    auto e = gather<tokens>(wte, ids);
    (void)e;
}
