// scatter_add with f32 indices: indices are integers.
// expect: unsupported_dtype<scribe::op_tag<scribe::op::scatter>, scribe::f32>
// expect: [scribe] the op does not take this dtype
#include <scribe/scribe.hpp>

SCRIBE_DIM(vocab);
SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto table = g.parameter(f32[vocab, hidden], "table");
    auto ids = g.parameter(f32[tokens], "ids");
    auto updates = g.parameter(f32[hidden, tokens], "updates");
    auto y = scatter_add<vocab>(table, ids, updates);
    (void)y;
}
