// bitcast_convert of f32 elements to f16: the widths differ (32 and 16 bits).
// expect: bitcast_widths_differ<scribe::f32, scribe::f16>
// expect: [scribe] bitcast_convert: the dtypes have different element widths
#include <scribe/scribe.hpp>

SCRIBE_DIM(tokens);

using namespace scribe;

int main() {
    graph g;
    auto x = g.parameter(f32[tokens], "x");
    auto y = bitcast_convert<f16>(x);
    (void)y;
}
