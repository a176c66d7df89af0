// bench/timing.hpp — the benchmarks' one timer: the median of repeated runs.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

namespace bench {

// Median seconds of f() over enough repetitions to take about `budget` seconds
// (at least `min_reps`, at most 200), after one warm-up call.
inline double median_seconds(const std::function<void()>& f, double budget = 0.3, int min_reps = 3) {
    using clock_type = std::chrono::steady_clock;
    f();
    const auto t0 = clock_type::now();
    f();
    const double once = std::max(1e-6, std::chrono::duration<double>(clock_type::now() - t0).count());
    const int reps = std::clamp(static_cast<int>(budget / once), min_reps, 200);
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
        const auto a = clock_type::now();
        f();
        t.push_back(std::chrono::duration<double>(clock_type::now() - a).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

}  // namespace bench
