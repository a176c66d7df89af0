// Splitting hidden=768 into 12 x 32 = 384: every extent static, the product wrong.
// expect: extents_do_not_multiply_out<scribe::static_dim<hidden, 768>, scribe::dims<scribe::static_dim<heads, 12>, scribe::static_dim<head_dim, 32> >
// expect: std::integer_sequence<long int, 768, 12, 32>
// expect: [scribe] split/merge: the static extents do not multiply out
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(heads);
SCRIBE_DIM(head_dim);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden.of<768>], "x");
    auto y = split<hidden, heads.of<12>, head_dim.of<32>>(x);
    (void)y;
}
