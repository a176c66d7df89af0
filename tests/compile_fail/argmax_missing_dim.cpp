// argmax<tokens> of logits that have only `vocab`.
// expect: [scribe] the op names a dimension the tensor does not have
// expect: dimension_not_in_tensor<scribe::op_tag<scribe::op::argmax>, tokens, scribe::dims<vocab> >
#include <scribe/scribe.hpp>

SCRIBE_DIM(vocab);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto logits = g.parameter(f32[vocab], "logits");
    auto next = argmax<tokens>(logits);
    (void)next;
}
