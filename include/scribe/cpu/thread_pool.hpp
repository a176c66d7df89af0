// scribe/cpu/thread_pool.hpp — a fixed set of worker threads that run one job at a
// time: run(fn) calls fn(t) for t = 0 .. size()-1, the caller being thread 0, and
// returns when all are done. Kernels split their output by t, so every element is
// computed by one thread in one order: results depend on the thread count only.
//
// Waiting spins briefly before it sleeps: a decode step runs many small products
// back to back, and waking a sleeping thread costs more than most of them.
//
// A pool gets all its threads or none: if one cannot be started (the system's
// thread limit, say), those already started are stopped and joined and the
// constructor throws scribe::error naming it, rather than run slower than asked.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "../core/error.hpp"

namespace scribe::cpu {

class thread_pool {
public:
    static constexpr unsigned max_threads = 1024;

    // threads = 0 means one per hardware thread (at most max_threads).
    explicit thread_pool(unsigned threads = 0) {
        if (threads == 0) threads = std::clamp(std::thread::hardware_concurrency(), 1u, max_threads);
        if (threads > max_threads)
            throw error("thread_pool: " + std::to_string(threads) + " threads asked for; a pool runs at most " +
                        std::to_string(max_threads));
        workers_.reserve(threads - 1);
        for (unsigned t = 1; t < threads; ++t) {
            try {
                workers_.emplace_back([this, t] { work(t); });
            } catch (const std::exception& e) {
                stop();
                throw error("thread_pool: cannot start thread " + std::to_string(t) + " of " + std::to_string(threads) + ": " +
                            e.what() + " (ask for fewer threads)");
            }
        }
    }
    ~thread_pool() { stop(); }
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;

    unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }

    void run(const std::function<void(unsigned)>& fn) {
        if (workers_.empty()) return fn(0);
        job_ = &fn;
        error_ = nullptr;
        pending_.store(static_cast<unsigned>(workers_.size()), std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
        { std::lock_guard lock(mutex_); }  // a worker about to sleep sees the new generation
        wake_.notify_all();
        std::exception_ptr mine;
        try {
            fn(0);
        } catch (...) {
            mine = std::current_exception();
        }
        if (!spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; })) {
            std::unique_lock lock(mutex_);
            done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
        }
        job_ = nullptr;
        if (mine) std::rethrow_exception(mine);
        if (error_) std::rethrow_exception(error_);
    }

    // [begin, end) of part t when `count` items are split into size() parts whose
    // boundaries are multiples of `align`.
    std::pair<std::int64_t, std::int64_t> part(std::int64_t count, unsigned t, std::int64_t align = 1) const {
        const auto blocks = (count + align - 1) / align;
        const auto n = static_cast<std::int64_t>(size());
        const auto b0 = blocks * t / n, b1 = blocks * (t + 1) / n;
        return {std::min(count, b0 * align), std::min(count, b1 * align)};
    }

private:
    void stop() {
        {
            std::lock_guard lock(mutex_);
            stop_.store(true);
        }
        wake_.notify_all();
        for (auto& w : workers_) w.join();
    }

    template <class Pred>
    static bool spin_until(Pred&& ready) {
        for (int i = 0; i < 4096; ++i) {
            if (ready()) return true;
#if defined(__x86_64__) || defined(__i386__)
            _mm_pause();
#endif
        }
        return ready();
    }

    void work(unsigned t) {
        std::uint64_t seen = 0;
        for (;;) {
            auto fresh = [&] {
                return stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen;
            };
            if (!spin_until(fresh)) {
                std::unique_lock lock(mutex_);
                wake_.wait(lock, fresh);
            }
            if (stop_.load(std::memory_order_acquire)) return;
            seen = generation_.load(std::memory_order_acquire);
            try {
                (*job_)(t);
            } catch (...) {
                std::lock_guard lock(mutex_);
                if (!error_) error_ = std::current_exception();
            }
            if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                std::lock_guard lock(mutex_);
                done_.notify_one();
            }
        }
    }

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    const std::function<void(unsigned)>* job_ = nullptr;
    std::atomic<unsigned> pending_{0};
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<bool> stop_{false};
    std::exception_ptr error_;
};

}  // namespace scribe::cpu
