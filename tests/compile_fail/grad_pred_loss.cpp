// grad of a pred "loss": a loss is a float scalar.
// expect: [scribe] grad: gradients are taken of and with respect to float tensors only
// expect: gradient_needs_float<scribe::diagnose::grad_role::loss, scribe::pred>
#include <scribe/scribe.hpp>

SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[tokens], "x");
    auto any_positive = gt(reduce_max<tokens>(x), 0.0);
    auto dx = grad(any_positive, x);
    (void)dx;
}
