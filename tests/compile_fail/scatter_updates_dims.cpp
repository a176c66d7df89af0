// scatter_add<vocab> of updates[hidden, batch] into table[vocab, hidden] at
// ids[tokens]: the updates must have gather's dimensions, [hidden, tokens].
// expect: scatter_updates_dims_differ<scribe::dims<hidden, tokens>, scribe::dims<hidden, batch> >
// expect: [scribe] scatter_add: the updates' dimensions differ from gather's result
#include <scribe/scribe.hpp>

SCRIBE_DIM(vocab);
SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);
SCRIBE_DIM(batch);

using namespace scribe;

int main() {
    graph g;
    auto table = g.parameter(f32[vocab, hidden], "table");
    auto ids = g.parameter(s32[tokens], "ids");
    auto updates = g.parameter(f32[hidden, batch], "updates");
    auto y = scatter_add<vocab>(table, ids, updates);
    (void)y;
}
