// scribe/train/loss_curve.hpp — a training run's loss curve as an SVG picture:
// the loss of every step (faint), its moving average (a line), the validation
// losses (dots), against the step, on axes with round ticks. Written beside the
// checkpoints by `scribe train`; any browser shows it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace scribe::train {

struct loss_point {
    std::int64_t step = 0;
    double loss = 0;
};

namespace detail {

// About n round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart).
inline std::vector<double> ticks(double lo, double hi, int n) {
    const double span = std::max(hi - lo, 1e-12);
    const double raw = span / n, p = std::pow(10.0, std::floor(std::log10(raw)));
    const double step = raw / p < 1.5 ? p : raw / p < 3.5 ? 2 * p : raw / p < 7.5 ? 5 * p : 10 * p;
    std::vector<double> out;
    for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
    return out;
}

inline std::string number(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return b;
}

// Text as SVG content: &, < and > escaped.
inline std::string escaped(const std::string& s) {
    std::string out;
    for (const char c : s) out += c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : std::string(1, c);
    return out;
}

}  // namespace detail

// The SVG text of a curve titled `title`; `train` by step, `validation` where measured.
inline std::string loss_curve_svg(const std::vector<loss_point>& train, const std::vector<loss_point>& validation,
                                  const std::string& title) {
    const double W = 720, H = 420, left = 64, right = 20, top = 40, bottom = 48;
    std::vector<loss_point> all;
    for (const auto* s : {&train, &validation})
        for (const auto& p : *s)
            if (std::isfinite(p.loss)) all.push_back(p);
    double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (!all.empty()) {
        x0 = 0;
        x1 = static_cast<double>(std::max_element(all.begin(), all.end(), [](auto a, auto b) { return a.step < b.step; })->step);
        y0 = std::min_element(all.begin(), all.end(), [](auto a, auto b) { return a.loss < b.loss; })->loss;
        y1 = std::max_element(all.begin(), all.end(), [](auto a, auto b) { return a.loss < b.loss; })->loss;
        const double pad = std::max(0.05 * (y1 - y0), 1e-3);
        y0 = std::max(0.0, y0 - pad);
        y1 += pad;
        x1 = std::max(x1, 1.0);
    }
    auto X = [&](double s) { return left + (s - x0) / (x1 - x0) * (W - left - right); };
    auto Y = [&](double l) { return top + (y1 - l) / (y1 - y0) * (H - top - bottom); };
    std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + detail::number(W) + "\" height=\"" + detail::number(H) +
                      "\" viewBox=\"0 0 " + detail::number(W) + " " + detail::number(H) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    svg += "<text x=\"" + detail::number(W / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" + detail::escaped(title) + "</text>\n";
    for (const double t : detail::ticks(y0, y1, 6)) {
        svg += "<line x1=\"" + detail::number(left) + "\" x2=\"" + detail::number(W - right) + "\" y1=\"" + detail::number(Y(t)) + "\" y2=\"" +
               detail::number(Y(t)) + "\" stroke=\"#e4e4e4\"/>\n";
        svg += "<text x=\"" + detail::number(left - 6) + "\" y=\"" + detail::number(Y(t) + 4) + "\" text-anchor=\"end\">" +
               detail::number(t) + "</text>\n";
    }
    for (const double t : detail::ticks(x0, x1, 8)) {
        svg += "<line x1=\"" + detail::number(X(t)) + "\" x2=\"" + detail::number(X(t)) + "\" y1=\"" + detail::number(H - bottom) +
               "\" y2=\"" + detail::number(H - bottom + 5) + "\" stroke=\"black\"/>\n";
        svg += "<text x=\"" + detail::number(X(t)) + "\" y=\"" + detail::number(H - bottom + 18) + "\" text-anchor=\"middle\">" +
               detail::number(t) + "</text>\n";
    }
    svg += "<path d=\"M" + detail::number(left) + " " + detail::number(top) + " V" + detail::number(H - bottom) + " H" +
           detail::number(W - right) + "\" fill=\"none\" stroke=\"black\"/>\n";
    svg += "<text x=\"" + detail::number(W / 2) + "\" y=\"" + detail::number(H - 10) + "\" text-anchor=\"middle\">step</text>\n";
    svg += "<text transform=\"translate(16 " + detail::number(H / 2) + ") rotate(-90)\" text-anchor=\"middle\">loss (nats/token)</text>\n";
    auto polyline = [&](const std::vector<loss_point>& pts, const char* style) {
        std::string s = "<polyline fill=\"none\" " + std::string(style) + " points=\"";
        for (const auto& p : pts)
            if (std::isfinite(p.loss)) s += detail::number(X(static_cast<double>(p.step))) + "," + detail::number(Y(p.loss)) + " ";
        return s + "\"/>\n";
    };
    if (!train.empty()) {
        svg += polyline(train, "stroke=\"#9ec5e8\" stroke-width=\"1\"");
        // The moving average over about 2% of the run (at least 1 step).
        const auto n = std::max<std::size_t>(1, train.size() / 50);
        std::vector<loss_point> smooth;
        double sum = 0;
        for (std::size_t i = 0; i < train.size(); ++i) {
            sum += train[i].loss;
            if (i >= n) sum -= train[i - n].loss;
            if (i + 1 >= n) smooth.push_back({train[i].step, sum / static_cast<double>(n)});
        }
        svg += polyline(smooth, "stroke=\"#1f5fa8\" stroke-width=\"2\"");
    }
    for (const auto& p : validation)
        if (std::isfinite(p.loss))
            svg += "<circle cx=\"" + detail::number(X(static_cast<double>(p.step))) + "\" cy=\"" + detail::number(Y(p.loss)) +
                   "\" r=\"4\" fill=\"#d9531e\"/>\n";
    const double lx = W - right - 170;
    svg += "<line x1=\"" + detail::number(lx) + "\" x2=\"" + detail::number(lx + 24) + "\" y1=\"" + detail::number(top + 10) + "\" y2=\"" +
           detail::number(top + 10) + "\" stroke=\"#1f5fa8\" stroke-width=\"2\"/><text x=\"" + detail::number(lx + 30) + "\" y=\"" +
           detail::number(top + 14) + "\">training (moving average)</text>\n";
    svg += "<circle cx=\"" + detail::number(lx + 12) + "\" cy=\"" + detail::number(top + 28) + "\" r=\"4\" fill=\"#d9531e\"/><text x=\"" +
           detail::number(lx + 30) + "\" y=\"" + detail::number(top + 32) + "\">validation</text>\n";
    return svg + "</svg>\n";
}

}  // namespace scribe::train
