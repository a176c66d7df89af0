// Your first gradient (docs/tutorial.md, part 4): a two-layer MLP learns
// y = sin(3x) by gradient descent. One graph holds the whole training step: the
// forward pass, the loss, its gradients and the SGD update, whose new weights are
// outputs aliased to the weight parameters, so the step updates them in place.
//
//   first_gradient [OUT_DIR]   trains 300 steps on the CPU, printing the loss, and
//                              writes OUT_DIR/first_gradient.hlo and .pb (one step)
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <vector>

#include <scribe/cpu.hpp>
#include <scribe/nn/losses.hpp>

SCRIBE_DIM(batch);
SCRIBE_DIM(in);
SCRIBE_DIM(width);
SCRIBE_DIM(out);

using namespace scribe;

int main(int argc, char** argv) {
    const std::filesystem::path dir = argc > 1 ? argv[1] : "out";
    graph g("first_gradient");
    g.bind(batch(64), in(1), width(16), out(1));

    // The model: y = tanh(x . w1 + b1) . w2 + b2.
    auto x = g.parameter(f32[batch, in], "x");
    auto y = g.parameter(f32[batch, out], "y");
    auto w1 = g.parameter(f32[in, width], "w1");
    auto b1 = g.parameter(f32[width], "b1");
    auto w2 = g.parameter(f32[width, out], "w2");
    auto b2 = g.parameter(f32[out], "b2");
    auto h = tanh(dot<in>(x, w1) + broadcast_to(b1, dot<in>(x, w1)));
    auto pred = dot<width>(h, w2) + broadcast_to(b2, dot<width>(h, w2));
    auto loss = nn::mean_squared_error(pred, y);

    // Its gradients, each of its weight's type, and one SGD step written in the DSL.
    auto [dw1, db1, dw2, db2] = grad(loss, w1, b1, w2, b2);
    const double lr = 0.1;
    g.outputs(loss, w1 - dw1 * lr, b1 - db1 * lr, w2 - dw2 * lr, b2 - db2 * lr);
    g.alias(1, w1);  // the new weights take the old ones' buffers
    g.alias(2, b1);
    g.alias(3, w2);
    g.alias(4, b2);
    hlo::write(g, dir, "first_gradient");

    // Data: 64 points of y = sin(3x) on [-1, 1]; weights: small, fixed values.
    std::vector<float> xs(64), ys(64);
    for (int i = 0; i < 64; ++i) {
        xs[static_cast<std::size_t>(i)] = -1.0f + 2.0f * static_cast<float>(i) / 63.0f;
        ys[static_cast<std::size_t>(i)] = std::sin(3.0f * xs[static_cast<std::size_t>(i)]);
    }
    auto spread = [](shape dims, float scale) {  // scale * sin(1.7 i + 0.3), i = 0, 1, ...
        cpu::array a(dtype::f32, std::move(dims));
        auto* v = reinterpret_cast<float*>(a.mutable_data());
        for (std::int64_t i = 0; i < a.size(); ++i) v[i] = scale * std::sin(1.7f * static_cast<float>(i) + 0.3f);
        return a;
    };
    auto w1v = spread(w1.shape(), 1.5f), b1v = spread(b1.shape(), 0.5f);
    auto w2v = spread(w2.shape(), 0.5f), b2v = spread(b2.shape(), 0.0f);
    const auto xa = cpu::array::borrow(dtype::f32, x.shape(), xs.data(), xs.size() * 4);
    const auto ya = cpu::array::borrow(dtype::f32, y.shape(), ys.data(), ys.size() * 4);

    cpu::executor step(g);
    float first = 0, last = 0;
    for (int i = 0; i < 300; ++i) {
        auto outs = step.run_donating({{"x", xa.view()}, {"y", ya.view()}, {"w1", std::move(w1v)}, {"b1", std::move(b1v)},
                                       {"w2", std::move(w2v)}, {"b2", std::move(b2v)}});
        last = outs[0].values<float>()[0];
        if (i == 0) first = last;
        if (i % 50 == 0 || i == 299) std::printf("step %3d  loss %.5f\n", i, last);
        w1v = std::move(outs[1]);
        b1v = std::move(outs[2]);
        w2v = std::move(outs[3]);
        b2v = std::move(outs[4]);
    }
    std::printf("loss %.4f -> %.4f; wrote %s\n", first, last, (dir / "first_gradient.hlo").c_str());
    return last < 0.1f * first ? 0 : 1;  // the example fails if it does not learn
}
