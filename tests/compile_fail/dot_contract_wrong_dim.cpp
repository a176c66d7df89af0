// dot<hidden> where the weight names its contracting dimension `embed`: contraction
// is by name, so the mismatch is caught even though the extents could agree.
// expect: dot_cannot_contract<hidden
// expect: [scribe] dot: cannot contract
// expect: scribe::dims<embed, vocab>
// expect: scribe::dims<hidden, tokens>
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(embed);
SCRIBE_DIM(vocab);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto w = g.parameter(f32[embed, vocab], "w");
    auto h = g.parameter(f32[hidden, tokens], "h");
    auto logits = dot<hidden>(w, h);
    (void)logits;
}
