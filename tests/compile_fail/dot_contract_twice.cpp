// dot naming the same contracting dimension twice.
// expect: duplicate_dimension_in_shape<hidden, scribe::dims<hidden, hidden> >
// expect: [scribe] a shape names the same dimension twice
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(vocab);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    g.bind(hidden(4), vocab(8), tokens(4));
    auto w = g.parameter(f32[hidden, vocab], "w");
    auto h = g.parameter(f32[hidden, tokens], "h");
    auto logits = dot<hidden, hidden>(w, h);
    (void)logits;
}
