// Writing an f32 update into an f16 KV cache.
// expect: dtype_mismatch<scribe::op_tag<scribe::op::dynamic_update_slice>, scribe::f16, scribe::f32>
// expect: [scribe] dtype mismatch
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto cache = g.parameter(f16[hidden, tokens], "cache");
    auto update = g.parameter(f32[hidden, tokens], "update");
    auto pos = g.parameter(s32[], "pos");
    auto y = dynamic_update_slice<tokens>(cache, update, pos);
    (void)y;
}
