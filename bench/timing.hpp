// bench/timing.hpp — the benchmarks' one timer (the median of repeated runs), and
// what the model benchmarks share: the median of measured figures, the dtype flag,
// running a peer's or a set-up script's command.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include <scribe/core/dtype.hpp>
#include <scribe/core/error.hpp>

namespace bench {

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// f32, f16 or bf16; `program` names the benchmark in the error.
inline scribe::dtype parse_dtype(const std::string& s, const std::string& program) {
    if (s == "f32") return scribe::dtype::f32;
    if (s == "f16") return scribe::dtype::f16;
    if (s == "bf16") return scribe::dtype::bf16;
    throw scribe::error(program + ": dtype " + s + " is not f32, f16 or bf16");
}

// A flag's number, all of `s` read (std::stod alone says only "stod" and takes
// "3x" as 3); `program` and `flag` name it in the error.
inline double parse_number(const std::string& s, const std::string& flag, const std::string& program) {
    std::size_t used = 0;
    double v = 0;
    try {
        v = std::stod(s, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != s.size()) throw scribe::error(program + ": " + flag + " takes a number, not \"" + s + "\"");
    return v;
}

// A flag's whole number from lo to hi (a count: steps, rounds, a batch).
inline std::int64_t parse_count(const std::string& s, const std::string& flag, const std::string& program, std::int64_t lo,
                                std::int64_t hi) {
    const double v = parse_number(s, flag, program);
    if (!(v == std::floor(v) && v >= static_cast<double>(lo) && v <= static_cast<double>(hi)))
        throw scribe::error(program + ": " + flag + " takes a whole number from " + std::to_string(lo) + " to " +
                            std::to_string(hi) + ", not \"" + s + "\"");
    return static_cast<std::int64_t>(v);
}

// A flag's positive, finite number (seconds of a time budget, megabytes).
inline double parse_positive(const std::string& s, const std::string& flag, const std::string& program) {
    const double v = parse_number(s, flag, program);
    if (!(v > 0 && std::isfinite(v))) throw scribe::error(program + ": " + flag + " takes a positive number, not \"" + s + "\"");
    return v;
}

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

// Runs a shell command (this program's output flushed first, so the two stay in
// order); fails naming `program` and the command when it fails.
inline void run_command(const std::string& program, const std::string& cmd) {
    std::fflush(stdout);
    if (std::system(cmd.c_str()) != 0) throw scribe::error(program + ": `" + cmd + "` failed");
}

}  // namespace bench
