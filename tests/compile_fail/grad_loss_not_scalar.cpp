// grad of a loss that still has dimensions: the loss must be one number.
// expect: [scribe] grad: the loss must be a scalar
// expect: loss_not_scalar<scribe::dims<batch, seq> >
#include <scribe/scribe.hpp>

SCRIBE_DIM(batch);
SCRIBE_DIM(seq);
SCRIBE_DIM(hidden);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[batch, seq, hidden], "x");
    auto w = g.parameter(f32[hidden], "w");
    auto per_token = reduce_sum<hidden>(x * broadcast_to(w, x));  // [batch, seq]: not reduced
    auto dw = grad(per_token, w);
    (void)dw;
}
