// A program outside the project that uses Scribe as an installed or bundled dependency.
#include <cstdio>

#include <scribe/scribe.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(vocab);

int main() {
    using namespace scribe;
    graph g("consumer");
    g.bind(hidden(4), vocab(6));
    g.outputs(reduce_sum<hidden>(g.parameter(f32[hidden, vocab], "w")));
    const auto text = hlo::to_text(g);
    std::puts(text.c_str());
    return text.find("reduce(") == std::string::npos;
}
