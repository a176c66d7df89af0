// A square weight written f32[hidden, hidden]: one dimension named twice.
// expect: duplicate_dimension_in_shape<hidden, scribe::dims<hidden, hidden> >
// expect: [scribe] a shape names the same dimension twice
#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);

using namespace scribe;

int main() {
    graph g;
    g.bind(hidden(4));
    auto w = g.parameter(f32[hidden, hidden], "w");
    (void)w;
}
