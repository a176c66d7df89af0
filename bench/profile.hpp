// bench/profile.hpp — where a graph's run time goes, from the executor's
// per-node times (cpu::options::profile): per op kind, and per op and shape
// summed over the layers (which products, say, cost most); and what is live at
// the planned memory peak (cpu::executor::planned_peak).
#pragma once

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <scribe/cpu/executor.hpp>
#include <scribe/graph/graph.hpp>

namespace bench {

// The FLOPs of a run's products: 2 per multiply-add of every dot node (output
// elements x the contracted extent), counted on the graph as built, so a forward,
// its backward and attention's score products are each counted as computed.
inline double dot_flops(const scribe::graph& g) {
    double flops = 0;
    for (const auto& n : g.nodes()) {
        if (n.kind != scribe::op::dot) continue;
        double out = 1, contracted = 1;
        for (const auto& d : n.dims) out *= static_cast<double>(d.extent);
        const auto& lhs = g.nodes()[static_cast<std::size_t>(n.operands[0])].dims;
        for (const auto axis : n.dot.lhs_contracting) contracted *= static_cast<double>(lhs[static_cast<std::size_t>(axis)].extent);
        flops += 2 * out * contracted;
    }
    return flops;
}

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

// The values live at the planned peak, by op and shape (summed over the layers).
inline void print_memory(const scribe::graph& g, const scribe::cpu::executor::peak_plan& p, const std::string& title,
                         std::size_t top = 14) {
    using namespace scribe;
    constexpr double mib = 1024.0 * 1024.0;
    const auto& at = g.nodes()[static_cast<std::size_t>(p.at)];
    std::printf("\n--- %s: planned peak %.1f MiB of intermediate values, at node %lld (%s %s), %zu values live\n", title.c_str(),
                static_cast<double>(p.bytes) / mib, static_cast<long long>(p.at), std::string(info(at.kind).name).c_str(),
                to_string(at.dims).c_str(), p.live.size());
    std::map<std::string, std::pair<std::size_t, int>> by_shape;
    for (const auto& [id, bytes] : p.live) {
        const auto& n = g.nodes()[static_cast<std::size_t>(id)];
        auto& s = by_shape[std::string(info(n.kind).name) + " " + std::string(name(n.type)) + to_string(n.dims) +
                           (n.label.empty() ? "" : " " + n.label)];
        s.first += bytes;
        ++s.second;
    }
    std::vector<std::pair<std::size_t, std::string>> rows;
    for (const auto& [k, v] : by_shape) rows.push_back({v.first, "x" + std::to_string(v.second) + " " + k});
    std::sort(rows.rbegin(), rows.rend());
    for (std::size_t j = 0; j < std::min(top, rows.size()); ++j)
        std::printf("  %9.1f MiB %5.1f%%  %s\n", static_cast<double>(rows[j].first) / mib,
                    100.0 * static_cast<double>(rows[j].first) / static_cast<double>(p.bytes), rows[j].second.c_str());
}

}  // namespace bench
