// An embedding lookup with f32 token ids.
// expect: unsupported_dtype<scribe::op_tag<scribe::op::gather>, scribe::f32>
// expect: [scribe] the op does not take this dtype
#include <scribe/scribe.hpp>

SCRIBE_DIM(vocab);
SCRIBE_DIM(hidden);
SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto wte = g.parameter(f32[vocab, hidden], "wte");
    auto ids = g.parameter(f32[tokens], "ids");
    auto e = gather<vocab>(wte, ids);
    (void)e;
}
