// scribe/cpu/communicator.hpp — how the ranks of a tensor-parallel run exchange
// values: the interface the CPU executor calls for all_reduce, all_gather and
// replica_id, and `thread_group`, its in-process implementation (ranks as threads
// of one process). Ranks as processes use the MPI one (parallel/mpi.hpp).
//
//     cpu::thread_group ranks(2);
//     cpu::executor e0(g, {.threads = 1, .comm = &ranks[0]}), e1(g, {.threads = 1, .comm = &ranks[1]});
//     // run e0 and e1 on two threads: the all_reduce nodes meet in the middle
//
// Every rank must make the same calls in the same order (as every replica of an
// XLA module does). The results are identical on every rank: a reduction adds the
// ranks' values in rank order, element by element, as kernels::all_reduce does.
//
// The ranks can be cut into groups that exchange among themselves
// (communicator::split, MPI_Comm_split's counterpart): a data-parallel x
// tensor-parallel mesh all-reduces activations within each tensor-parallel group
// and gradients within each data-parallel one.
//
// A rank that stops answering (hung, stopped, dead) would leave the others
// waiting forever, so an exchange waits at most timeout() (default 300 s) and
// then throws scribe::error naming the ranks that did not arrive; the
// communicator is then failed and every later exchange throws at once.
#pragma once

#include <algorithm>
#include <atomic>
#include <map>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "../core/error.hpp"
#include "kernels.hpp"

namespace scribe::cpu {

namespace detail {
// replica groups as text: "{0,1}{2,3}".
inline std::string groups_text(const std::vector<std::vector<std::int64_t>>& groups) {
    std::string text;
    for (const auto& gr : groups) {
        text += "{";
        for (std::size_t k = 0; k < gr.size(); ++k) text += (k ? "," : "") + std::to_string(gr[k]);
        text += "}";
    }
    return text;
}

// "within 0.3 s (the collective timeout; ...)": how a timeout's error ends.
inline std::string within(std::chrono::milliseconds timeout) {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%g s", static_cast<double>(timeout.count()) / 1000);
    return std::string("within ") + seconds + " (the collective timeout; --collective-timeout sets it)";
}
// The error of an exchange that timed out: "rank 2 did not reach the all-reduce
// within 0.3 s (...)"; `missing` lists the ranks that did not arrive (none: the
// last one was arriving just then).
inline std::string timeout_message(const std::vector<int>& missing, const char* what, std::chrono::milliseconds timeout) {
    if (missing.empty()) return std::string("parallel ranks: the ") + what + " did not complete " + within(timeout);
    std::string ranks = missing.size() == 1 ? "rank " : "ranks ";
    for (std::size_t k = 0; k < missing.size(); ++k) ranks += (k ? ", " : "") + std::to_string(missing[k]);
    return "parallel ranks: " + ranks + " did not reach the " + what + " " + within(timeout);
}
}  // namespace detail

class communicator {
public:
    static constexpr std::chrono::milliseconds default_timeout{300'000};

    virtual ~communicator() = default;
    virtual int rank() const = 0;
    virtual int size() const = 0;
    // data[0, count) of dtype t becomes the element-wise reduction over all ranks.
    virtual void all_reduce(dtype t, reducer r, void* data, std::int64_t count) = 0;
    // Every rank's `bytes` bytes at `in`, in rank order, at `out` (size() * bytes).
    virtual void all_gather(const void* in, void* out, std::size_t bytes) = 0;
    // Rank root's `bytes` bytes at `data`, copied to every rank's `data`.
    virtual void broadcast(void* data, std::size_t bytes, int root) = 0;
    // Called by a rank that failed, so the others' pending exchanges throw
    // instead of waiting for it forever.
    virtual void abort() noexcept {}

    // The communicator of this rank's group when the ranks are cut into `groups`
    // (each rank in exactly one; a group's ranks numbered in the order given).
    // Every rank must call it with the same groups, at the same point of its
    // exchanges (it is one, as MPI_Comm_split is). The result shares this one's
    // timeout and failure: an abort or a timeout in either stops both.
    std::shared_ptr<communicator> split(const std::vector<std::vector<std::int64_t>>& groups) {
        std::vector<bool> seen(static_cast<std::size_t>(size()), false);
        int color = -1, key = -1;
        std::vector<int> members;
        for (std::size_t k = 0; k < groups.size(); ++k)
            for (std::size_t j = 0; j < groups[k].size(); ++j) {
                const auto r = groups[k][j];
                if (r < 0 || r >= size() || seen[static_cast<std::size_t>(r)])
                    throw error("parallel ranks: replica groups " + detail::groups_text(groups) + " do not cut the " + std::to_string(size()) +
                                " ranks into parts (rank " + std::to_string(r) + (r < 0 || r >= size() ? " does not exist)" : " is in two)"));
                seen[static_cast<std::size_t>(r)] = true;
                if (r == rank()) color = static_cast<int>(k), key = static_cast<int>(j);
            }
        for (int r = 0; r < size(); ++r)
            if (!seen[static_cast<std::size_t>(r)])
                throw error("parallel ranks: replica groups " + detail::groups_text(groups) + " leave out rank " + std::to_string(r));
        for (auto r : groups[static_cast<std::size_t>(color)]) members.push_back(static_cast<int>(r));
        auto part = split_off(color, key, members);
        part->set_timeout(timeout());
        return part;
    }

    // How long one exchange waits for the other ranks before it throws, naming
    // the ranks that did not arrive; zero or less: forever. Set it before the
    // exchanges start; it also bounds how far apart the ranks may reach an
    // exchange (a slower load of the weights on one rank, say).
    void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }
    std::chrono::milliseconds timeout() const { return timeout_; }

protected:
    // This rank's group, number `color`, in which it is rank `key`; `members`
    // are the group's ranks (of this communicator) in order.
    virtual std::shared_ptr<communicator> split_off(int color, int key, const std::vector<int>& members) = 0;

private:
    std::chrono::milliseconds timeout_ = default_timeout;
};

// N ranks in one process, one thread each. ranks[r] is rank r's communicator.
class thread_group {
public:
    static constexpr int max_ranks = 1024;

    explicit thread_group(int ranks) : shared_(std::make_shared<state>(identity(checked(ranks)), nullptr)) {
        for (int r = 0; r < ranks; ++r) members_.push_back(std::make_unique<member>(shared_, r));
    }
    int size() const { return static_cast<int>(members_.size()); }
    communicator& operator[](int rank) { return *members_.at(static_cast<std::size_t>(rank)); }
    // Every rank's communicator::set_timeout.
    void set_timeout(std::chrono::milliseconds t) {
        for (auto& m : members_) m->set_timeout(t);
    }

private:
    static std::vector<int> identity(int ranks) {
        std::vector<int> v(static_cast<std::size_t>(ranks));
        for (int r = 0; r < ranks; ++r) v[static_cast<std::size_t>(r)] = r;
        return v;
    }
    static int checked(int ranks) {
        if (ranks < 1 || ranks > max_ranks)
            throw error("thread_group: needs between 1 and " + std::to_string(max_ranks) + " ranks, got " + std::to_string(ranks));
        return ranks;
    }

    struct state {
        // A group of `members` (ranks of the whole group, in this one's order),
        // or the whole group (root == nullptr).
        state(std::vector<int> m, std::shared_ptr<state> parent)
            : ranks(static_cast<int>(m.size())), members(std::move(m)), root(std::move(parent)),
              slots(members.size()), entered(members.size()) {}
        int ranks;
        std::vector<int> members;     // the whole group's numbers of this one's ranks, for messages
        std::shared_ptr<state> root;  // the whole group, whose abort stops this one too
        std::vector<void*> slots;  // each rank's buffer for the exchange in progress
        std::vector<unsigned char> scratch;
        // Arrivals, completed barriers and the abort in one word, so that the last
        // arrival and a timeout cannot both win: bit 63 aborted, bits 32-62 the
        // barriers completed (mod 2^31), bits 0-31 the ranks arrived at this one.
        static constexpr std::uint64_t aborted_bit = 1ULL << 63, arrived_mask = 0xffffffffULL;
        std::atomic<std::uint64_t> word{0};
        // Barriers each rank has entered (only it writes its own; a line each):
        // on a timeout, the ranks behind are the ones that did not arrive.
        struct alignas(64) count {
            std::atomic<std::uint64_t> n{0};
        };
        std::vector<count> entered;
        std::mutex failure_mutex;
        std::string failure;  // why the group was aborted by a timeout; empty: a rank failed
        // The whole group's parts made by split, by their members: made by the
        // first rank to ask, shared with the others while any holds it.
        std::mutex parts_mutex;
        std::map<std::vector<int>, std::weak_ptr<state>> parts;

        static std::uint64_t completed(std::uint64_t w) { return (w & ~aborted_bit) >> 32; }
        state& whole() { return root ? *root : *this; }
        bool whole_aborted() const { return root && (root->word.load(std::memory_order_acquire) & aborted_bit); }

        // With failure_mutex held: the timeout that sets the aborted bit holds it
        // until its message is written.
        std::string reason() const {
            return failure.empty() ? "parallel ranks: another rank failed; this rank stops too" : failure;
        }
        [[noreturn]] void throw_aborted() {
            if (root && !(word.load(std::memory_order_acquire) & aborted_bit)) root->throw_aborted();
            std::lock_guard lock(failure_mutex);
            throw error(reason());
        }
        // Stops the whole group (every part) with `message`, unless it stopped already.
        void abort_whole(const std::string& message) {
            auto& w = whole();
            std::lock_guard lock(w.failure_mutex);
            if (w.word.load(std::memory_order_acquire) & aborted_bit) return;
            w.failure = message;
            w.word.fetch_or(aborted_bit, std::memory_order_acq_rel);
        }

        // Every rank waits here until all have arrived, or throws once the group
        // (or the whole group) is aborted or `timeout` passes. Spins briefly (the
        // ranks of a decode step meet every few hundred microseconds), then
        // yields, reading the clock only every 64 yields (a yield can take a time
        // slice on a busy machine).
        void barrier(int rank, const char* what, std::chrono::milliseconds timeout) {
            auto& mine = entered[static_cast<std::size_t>(rank)].n;
            const auto number = mine.load(std::memory_order_relaxed) + 1;
            mine.store(number, std::memory_order_relaxed);
            auto w = word.load(std::memory_order_acquire);
            for (;;) {
                if ((w & aborted_bit) || whole_aborted()) throw_aborted();
                const bool last = static_cast<int>(w & arrived_mask) + 1 == ranks;
                const auto next = last ? ((completed(w) + 1) & 0x7fffffffULL) << 32 : w + 1;
                if (word.compare_exchange_weak(w, next, std::memory_order_acq_rel, std::memory_order_acquire)) {
                    if (last) return;
                    break;
                }
            }
            const auto gen = completed(w);
            std::chrono::steady_clock::time_point deadline{};
            for (std::uint64_t spins = 0;; ++spins) {
                w = word.load(std::memory_order_acquire);
                if (completed(w) != gen) return;
                if ((w & aborted_bit) || whole_aborted()) throw_aborted();
                if (spins < 4096) {
#if defined(__x86_64__) || defined(__i386__)
                    _mm_pause();
#endif
                    continue;
                }
                if (timeout.count() > 0 && spins % 64 == 0) {
                    const auto now = std::chrono::steady_clock::now();
                    if (deadline == std::chrono::steady_clock::time_point{}) deadline = now + timeout;
                    else if (now >= deadline) time_out(gen, number, what, timeout);
                }
                std::this_thread::yield();
            }
        }

        // Aborts the group with a message naming the ranks that have not entered
        // barrier `number`, unless the barrier completed meanwhile (then returns).
        // A part's timeout stops the whole group with the same message.
        void time_out(std::uint64_t gen, std::uint64_t number, const char* what, std::chrono::milliseconds timeout) {
            std::string message;
            {
                std::lock_guard lock(failure_mutex);
                auto w = word.load(std::memory_order_acquire);
                while (completed(w) == gen && !(w & aborted_bit)) {
                    if (!word.compare_exchange_weak(w, w | aborted_bit, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
                    std::vector<int> missing;
                    for (int r = 0; r < ranks; ++r)
                        if (entered[static_cast<std::size_t>(r)].n.load(std::memory_order_relaxed) < number)
                            missing.push_back(members[static_cast<std::size_t>(r)]);
                    failure = detail::timeout_message(missing, what, timeout);
                    message = failure;
                    break;
                }
                if (message.empty()) {
                    if (completed(w) != gen) return;
                    message = reason();
                }
            }
            if (root) abort_whole(message);
            throw error(message);
        }
    };

    struct member final : communicator {
        member(std::shared_ptr<state> s, int r) : s_(std::move(s)), rank_(r) {}
        int rank() const override { return rank_; }
        int size() const override { return s_->ranks; }

        void all_reduce(dtype t, reducer r, void* data, std::int64_t count) override {
            const auto bytes = static_cast<std::size_t>(count) * info(t).bytes;
            if (rank_ == 0 && s_->scratch.size() < bytes) s_->scratch.resize(bytes);  // before anyone reads it
            s_->slots[static_cast<std::size_t>(rank_)] = data;
            barrier("all-reduce");
            // Rank k reduces part k of the elements, over the ranks in order, into scratch.
            const auto n = static_cast<std::int64_t>(s_->ranks);
            const auto begin = count * rank_ / n, end = count * (rank_ + 1) / n;
            if (t == dtype::f32 && r == reducer::sum) {  // gradients: the same sums, vectorized
                auto* out = reinterpret_cast<float*>(s_->scratch.data());
                for (std::int64_t b = begin; b < end; b += 4096) {  // a block of scratch stays in L1
                    const auto e = std::min(end, b + 4096);
                    const auto* x0 = static_cast<const float*>(s_->slots[0]);
                    for (auto i = b; i < e; ++i) out[i] = 0.0f + x0[i];  // as the identity 0 + x0 (a -0 becomes +0)
                    for (std::size_t k = 1; k < s_->slots.size(); ++k) {
                        const auto* xk = static_cast<const float*>(s_->slots[k]);
                        for (auto i = b; i < e; ++i) out[i] += xk[i];
                    }
                }
            } else {
                visit(t, [&](auto D) {
                    using E = element<decltype(D)::value>;
                    using C = typename E::compute;
                    for (std::int64_t i = begin; i < end; ++i) {
                        C acc = kernels::reduce_identity<C>(r);
                        for (auto* x : s_->slots)
                            acc = kernels::reduce_value<C>(r, acc, E::load(static_cast<const unsigned char*>(x), i));
                        E::store(s_->scratch.data(), i, acc);
                    }
                });
            }
            barrier("all-reduce");
            std::memcpy(data, s_->scratch.data(), bytes);
            barrier("all-reduce");  // nobody starts the next exchange before all have copied
        }

        void all_gather(const void* in, void* out, std::size_t bytes) override {
            s_->slots[static_cast<std::size_t>(rank_)] = const_cast<void*>(in);
            barrier("all-gather");
            for (std::size_t k = 0; k < s_->slots.size(); ++k)
                std::memcpy(static_cast<unsigned char*>(out) + k * bytes, s_->slots[k], bytes);
            barrier("all-gather");
        }

        void broadcast(void* data, std::size_t bytes, int root) override {
            if (rank_ == root) s_->slots[static_cast<std::size_t>(root)] = data;
            barrier("broadcast");
            if (rank_ != root) std::memcpy(data, s_->slots[static_cast<std::size_t>(root)], bytes);
            barrier("broadcast");
        }

        void abort() noexcept override {
            s_->word.fetch_or(state::aborted_bit, std::memory_order_acq_rel);
            s_->whole().word.fetch_or(state::aborted_bit, std::memory_order_acq_rel);
        }

        void barrier(const char* what) { s_->barrier(rank_, what, timeout()); }

    protected:
        // The part of the whole group with these members: made by the first of
        // them to ask, shared by the rest.
        std::shared_ptr<communicator> split_off(int, int key, const std::vector<int>& members) override {
            auto& whole = s_->whole();
            std::vector<int> ids;
            for (auto m : members) ids.push_back(s_->members[static_cast<std::size_t>(m)]);
            std::shared_ptr<state> part;
            {
                std::lock_guard lock(whole.parts_mutex);
                auto& p = whole.parts[ids];
                part = p.lock();
                if (!part) {
                    part = std::make_shared<state>(ids, s_->root ? s_->root : s_);
                    p = part;
                }
            }
            return std::make_shared<member>(std::move(part), key);
        }

        std::shared_ptr<state> s_;
        int rank_;
    };

    std::shared_ptr<state> shared_;
    std::vector<std::unique_ptr<member>> members_;
};

}  // namespace scribe::cpu
