// A program outside the project that uses Scribe as an installed or bundled
// dependency: the umbrella header and the CPU backend (with xtensor, which its API
// speaks), a small graph run on the CPU and exported as HLO text and proto.
#include <cmath>
#include <cstdio>
#include <string>

#include <scribe/cpu.hpp>
#include <scribe/scribe.hpp>
#include <xtensor/xarray.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(vocab);

int main() {
    using namespace scribe;
    graph g("consumer");
    g.bind(hidden(2), vocab(3));
    auto h = g.parameter(f32[hidden], "h");
    auto w = g.parameter(f32[hidden, vocab], "w");
    g.outputs(softmax<vocab>(dot<hidden>(w, h)));

    xt::xarray<float> hv = {1.0f, 2.0f};
    xt::xarray<float> wv = {{1.0f, 0.0f, 0.5f}, {0.0f, 1.0f, 0.5f}};
    const auto out = cpu::executor(g)({cpu::borrow(hv), cpu::borrow(wv)});
    const auto p = cpu::adapt<float>(out[0]);  // softmax of the logits 1, 2, 1.5
    std::printf("cpu: %.4f %.4f %.4f\n", p(0), p(1), p(2));
    const float e0 = std::exp(1.0f), e1 = std::exp(2.0f), e2 = std::exp(1.5f), sum = e0 + e1 + e2;
    if (std::fabs(p(0) - e0 / sum) > 1e-5f || std::fabs(p(1) - e1 / sum) > 1e-5f || std::fabs(p(2) - e2 / sum) > 1e-5f)
        return 1;

    const std::string text = hlo::to_text(g);
    const std::string proto = hlo::to_proto(g);
    std::puts(text.c_str());
    return text.find("dot(") == std::string::npos || proto.empty();
}
