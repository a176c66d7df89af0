// bench/profile.hpp — where a graph's run time goes, from the executor's
// per-node times (cpu::options::profile): per op kind, and per op and shape
// summed over the layers (which products, say, cost most).
#pragma once

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <scribe/graph/graph.hpp>

namespace bench {

// `seconds`: each node's mean time; `total`: the mean wall time of a run.
inline void print_profile(const scribe::graph& g, const std::vector<double>& seconds, double total, const std::string& title,
                          std::size_t top = 14) {
    using namespace scribe;
    std::map<std::string, std::pair<double, int>> by_kind, by_shape;
    double timed = 0;
    for (std::size_t i = 0; i < seconds.size(); ++i) {
        const auto& n = g.nodes()[i];
        auto& k = by_kind[std::string(info(n.kind).name)];
        k.first += seconds[i];
        ++k.second;
        timed += seconds[i];
        std::string operands;
        for (auto o : n.operands) operands += (operands.empty() ? "" : ", ") + to_string(g.nodes()[static_cast<std::size_t>(o)].dims);
        auto& s = by_shape[std::string(info(n.kind).name) + " " + to_string(n.dims) + " <- " + operands];
        s.first += seconds[i];
        ++s.second;
    }
    std::printf("\n--- %s: %.2f ms per run (nodes timed: %.2f ms), %zu nodes\n", title.c_str(), total * 1e3, timed * 1e3,
                g.nodes().size());
    std::vector<std::pair<double, std::string>> kinds, shapes;
    for (const auto& [k, v] : by_kind) kinds.push_back({v.first, k + " x" + std::to_string(v.second)});
    for (const auto& [k, v] : by_shape) shapes.push_back({v.first, "x" + std::to_string(v.second) + " " + k});
    std::sort(kinds.rbegin(), kinds.rend());
    std::sort(shapes.rbegin(), shapes.rend());
    for (const auto& [t, k] : kinds)
        if (t > 1e-5) std::printf("  %8.3f ms %5.1f%%  %s\n", t * 1e3, 100 * t / timed, k.c_str());
    std::printf("  by op and shape (summed over the layers):\n");
    for (std::size_t j = 0; j < std::min(top, shapes.size()); ++j)
        std::printf("  %8.3f ms %5.1f%%  %s\n", shapes[j].first * 1e3, 100 * shapes[j].first / timed, shapes[j].second.c_str());
}

}  // namespace bench
