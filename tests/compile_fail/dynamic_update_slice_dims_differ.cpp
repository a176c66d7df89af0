// A KV-cache write whose update is [heads, tokens] into a [hidden, tokens] cache.
// expect: update_dims_differ<scribe::dims<hidden, tokens>, scribe::dims<heads, tokens>
// expect: [scribe] dynamic_update_slice: the update's dimensions differ from the tensor's
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(heads);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto cache = g.parameter(f32[hidden, tokens], "cache");
    auto update = g.parameter(f32[heads, tokens], "update");
    auto pos = g.parameter(s32[], "pos");
    auto y = dynamic_update_slice<tokens>(cache, update, pos);
    (void)y;
}
