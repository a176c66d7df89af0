// Test support: run one function per rank on threads at once.
#pragma once

#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace scribe_test {

// Runs f(rank) on `ranks` threads at once; rethrows the first failure.
template <class F>
void on_threads(int ranks, F f) {
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(ranks));
    std::vector<std::thread> ts;
    for (int r = 0; r < ranks; ++r)
        ts.emplace_back([&, r] {
            try {
                f(r);
            } catch (...) {
                errors[static_cast<std::size_t>(r)] = std::current_exception();
            }
        });
    for (auto& t : ts) t.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}

}  // namespace scribe_test
