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
#pragma once

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "../core/error.hpp"
#include "kernels.hpp"

namespace scribe::cpu {

class communicator {
public:
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
};

// N ranks in one process, one thread each. ranks[r] is rank r's communicator.
class thread_group {
public:
    explicit thread_group(int ranks) : shared_(std::make_shared<state>(ranks)) {
        if (ranks < 1) throw error("thread_group: needs at least one rank, got " + std::to_string(ranks));
        for (int r = 0; r < ranks; ++r) members_.push_back(std::make_unique<member>(shared_, r));
    }
    int size() const { return static_cast<int>(members_.size()); }
    communicator& operator[](int rank) { return *members_.at(static_cast<std::size_t>(rank)); }

private:
    struct state {
        explicit state(int n) : ranks(n), slots(static_cast<std::size_t>(n)) {}
        int ranks;
        std::vector<void*> slots;  // each rank's buffer for the exchange in progress
        std::vector<unsigned char> scratch;
        std::atomic<int> arrived{0};
        std::atomic<std::uint64_t> generation{0};
        std::atomic<bool> aborted{false};

        // Every rank waits here until all have arrived. Spins briefly (the ranks
        // of a decode step meet every few hundred microseconds), then yields.
        void barrier() {
            const auto gen = generation.load(std::memory_order_acquire);
            if (arrived.fetch_add(1, std::memory_order_acq_rel) + 1 == ranks) {
                arrived.store(0, std::memory_order_relaxed);
                generation.fetch_add(1, std::memory_order_acq_rel);
                return;
            }
            for (std::uint64_t spins = 0; generation.load(std::memory_order_acquire) == gen; ++spins) {
                if (aborted.load(std::memory_order_acquire))
                    throw error("tensor parallel: another rank failed; this rank stops too");
                if (spins < 4096) {
#if defined(__x86_64__) || defined(__i386__)
                    _mm_pause();
#endif
                } else {
                    std::this_thread::yield();
                }
            }
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
            s_->barrier();
            // Rank k reduces part k of the elements, over the ranks in order, into scratch.
            const auto n = static_cast<std::int64_t>(s_->ranks);
            const auto begin = count * rank_ / n, end = count * (rank_ + 1) / n;
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
            s_->barrier();
            std::memcpy(data, s_->scratch.data(), bytes);
            s_->barrier();  // nobody starts the next exchange before all have copied
        }

        void all_gather(const void* in, void* out, std::size_t bytes) override {
            s_->slots[static_cast<std::size_t>(rank_)] = const_cast<void*>(in);
            s_->barrier();
            for (std::size_t k = 0; k < s_->slots.size(); ++k)
                std::memcpy(static_cast<unsigned char*>(out) + k * bytes, s_->slots[k], bytes);
            s_->barrier();
        }

        void broadcast(void* data, std::size_t bytes, int root) override {
            if (rank_ == root) s_->slots[static_cast<std::size_t>(root)] = data;
            s_->barrier();
            if (rank_ != root) std::memcpy(data, s_->slots[static_cast<std::size_t>(root)], bytes);
            s_->barrier();
        }

        void abort() noexcept override { s_->aborted.store(true, std::memory_order_release); }

        std::shared_ptr<state> s_;
        int rank_;
    };

    std::shared_ptr<state> shared_;
    std::vector<std::unique_ptr<member>> members_;
};

}  // namespace scribe::cpu
