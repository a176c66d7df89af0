// Concatenating [hidden, tokens] with [vocab, tokens] along tokens.
// expect: concatenate_dims_differ<scribe::op_tag<scribe::op::concatenate>, scribe::dims<hidden, tokens>, scribe::dims<vocab, tokens>
// expect: [scribe] concatenate: the operands' dimensions differ; they must have the same dimensions
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(vocab);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto a = g.parameter(f32[hidden, tokens], "a");
    auto b = g.parameter(f32[vocab, tokens], "b");
    auto y = concatenate<tokens>(a, b);
    (void)y;
}
