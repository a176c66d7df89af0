// Attention scores where the keys were not renamed: q and k both have `tokens`, so
// dot<head_dim> would silently treat it as a batch dimension ([heads, tokens]
// instead of [heads, tokens, keys]) and the mistake would surface at a later add.
// The dot itself is refused and names the dimension.
// expect: [scribe] dot: a dimension in both operands is neither contracted nor batched
// expect: dot_shared_dimension_not_batched<tokens, scribe::dims<heads, tokens, head_dim>, scribe::dims<heads, tokens, head_dim>
#include <scribe/scribe.hpp>

SCRIBE_DIM(heads);
SCRIBE_DIM(tokens);
SCRIBE_DIM(head_dim);

using namespace scribe;

int main() {
    graph g;
    auto q = g.parameter(f32[heads, tokens, head_dim], "q");
    auto k = g.parameter(f32[heads, tokens, head_dim], "k");  // forgot rename<tokens, keys>
    auto scores = dot<head_dim, batched<heads>>(q, k);
    auto probs = softmax<tokens>(scores);  // uses the rejected result: no second error
    g.outputs(probs + probs);
}
