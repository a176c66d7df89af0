// x.extent(vocab) on a tensor without `vocab`.
// expect: [scribe] the op names a dimension the tensor does not have
// expect: dimension_not_in_tensor<scribe::diagnose::composite_op<scribe::diagnose::op_name::extent>, vocab, scribe::dims<hidden> >
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(vocab);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[hidden], "x");
    return static_cast<int>(x.extent(vocab));
}
