// random_uniform of an s32 spec: uniforms in [0, 1) are floats (random_bits gives u32).
// expect: unsupported_dtype<scribe::diagnose::composite_op<scribe::diagnose::op_name::random_uniform>, scribe::s32>
// expect: [scribe] the op does not take this dtype
#include <scribe/scribe.hpp>

SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    g.bind(tokens(4));
    random_key key(g, 1);
    auto u = random_uniform(key, s32[tokens]);
    (void)u;
}
