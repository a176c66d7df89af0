// grad with respect to an integer tensor: only float values have gradients.
// expect: [scribe] grad: gradients are taken of and with respect to float tensors only
// expect: gradient_needs_float<scribe::diagnose::grad_role::with_respect_to, scribe::s32>
#include <scribe/scribe.hpp>

SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[tokens], "x");
    auto ids = g.parameter(s32[tokens], "ids");
    auto loss = sum_all(x * convert<f32>(ids));
    auto [dx, dids] = grad(loss, x, ids);
    (void)dx;
    (void)dids;
}
