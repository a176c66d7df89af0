// scribe/parallel/mpi.hpp — ranks as processes: a cpu::communicator over MPI
// (OpenMPI), for `mpirun -np N scribe generate --tp N ...`. Needs <mpi.h> and
// linking with MPI; the rest of Scribe does not.
//
//     parallel::mpi_session mpi(&argc, &argv);          // MPI_Init / MPI_Finalize
//     runtime::decoder<F> lm(dir, {.tp = mpi.size(), .comm = &mpi.world()});
//
// Reductions run in f32 (16-bit values are widened, reduced, rounded once, as
// kernels::all_reduce does); every rank gets the same bytes.
//
// Collectives are nonblocking ones waited on against the communicator's timeout
// (cpu::communicator::timeout). When it passes, the rank asks every other rank,
// on a communicator of its own (MPI_Comm_dup), which collective it is waiting
// in; a rank that is waiting answers, and those that do not answer within a
// second are the ones the error names. Asking only on a timeout keeps the
// exchanges of a decode step free of extra messages. After a timeout the
// communicator is failed (its collective is left pending): end the job with
// abort(), as `scribe` does.
#pragma once

// The C API only: OpenMPI's and MPICH's deprecated C++ bindings do not build warning-free.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../cpu/communicator.hpp"

namespace scribe::parallel {

namespace detail {
inline void mpi_check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    throw error(std::string("MPI: ") + what + " failed: " + std::string(text, static_cast<std::size_t>(len)));
}

// A count as MPI's int; one that does not fit is an error naming it, not a wrapped value.
inline int mpi_count(std::uint64_t n, const char* what) {
    if (n > static_cast<std::uint64_t>(INT_MAX))
        throw error(std::string("MPI: ") + what + " of " + std::to_string(n) + " is more than MPI's int counts hold (" +
                    std::to_string(INT_MAX) + ")");
    return static_cast<int>(n);
}
}  // namespace detail

class mpi_communicator final : public cpu::communicator {
public:
    // `owned`: comm is this one's to free (a split's). `ranks`: the numbers its
    // messages give comm's ranks (a split's: the whole job's); empty: comm's own.
    explicit mpi_communicator(MPI_Comm comm = MPI_COMM_WORLD, bool owned = false, std::vector<int> ranks = {})
        : comm_(comm), owned_(owned), ranks_(std::move(ranks)) {
        detail::mpi_check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
        detail::mpi_check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
        if (ranks_.empty())
            for (int r = 0; r < size_; ++r) ranks_.push_back(r);
        // Errors come back as return codes (and become exceptions) instead of aborting.
        MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
        // The questions of a timeout travel apart from the collectives (the error handler is copied).
        detail::mpi_check(MPI_Comm_dup(comm_, &side_), "MPI_Comm_dup");
    }
    ~mpi_communicator() override {
        MPI_Comm_free(&side_);
        if (owned_) MPI_Comm_free(&comm_);
    }
    mpi_communicator(const mpi_communicator&) = delete;
    mpi_communicator& operator=(const mpi_communicator&) = delete;

    int rank() const override { return rank_; }
    int size() const override { return size_; }

    void all_reduce(dtype t, reducer r, void* data, std::int64_t count) override {
        const MPI_Op op = r == reducer::sum ? MPI_SUM : r == reducer::max ? MPI_MAX : MPI_MIN;
        const auto n = static_cast<std::size_t>(count);
        switch (t) {
            case dtype::f32: return reduce(data, count, MPI_FLOAT, op);
            case dtype::f64: return reduce(data, count, MPI_DOUBLE, op);
            case dtype::s32: return reduce(data, count, MPI_INT32_T, op);
            case dtype::s64: return reduce(data, count, MPI_INT64_T, op);
            case dtype::f16:
            case dtype::bf16: {
                wide_.resize(n);
                auto* p = static_cast<unsigned char*>(data);
                cpu::visit(t, [&](auto D) {
                    using E = cpu::element<decltype(D)::value>;
                    for (std::size_t i = 0; i < n; ++i) wide_[i] = E::load(p, static_cast<std::int64_t>(i));
                    reduce(wide_.data(), count, MPI_FLOAT, op);
                    for (std::size_t i = 0; i < n; ++i) E::store(p, static_cast<std::int64_t>(i), wide_[i]);
                });
                return;
            }
            default:
                throw error("MPI: all_reduce of " + std::string(name(t)) + " is not supported");
        }
    }
    void all_gather(const void* in, void* out, std::size_t bytes) override {
        const int n = detail::mpi_count(bytes, "all_gather's bytes per rank");
        collective(gather_kind, [&](MPI_Request* req) {
            detail::mpi_check(MPI_Iallgather(in, n, MPI_BYTE, out, n, MPI_BYTE, comm_, req), "MPI_Iallgather");
        });
    }
    void broadcast(void* data, std::size_t bytes, int root) override {
        const int n = detail::mpi_count(bytes, "broadcast's bytes");
        collective(broadcast_kind, [&](MPI_Request* req) {
            detail::mpi_check(MPI_Ibcast(data, n, MPI_BYTE, root, comm_, req), "MPI_Ibcast");
        });
    }
    // A failed rank ends the whole job: the others would wait for it forever.
    void abort() noexcept override { MPI_Abort(comm_, 1); }

protected:
    std::shared_ptr<cpu::communicator> split_off(int color, int key, const std::vector<int>& members) override {
        MPI_Comm part = MPI_COMM_NULL;
        detail::mpi_check(MPI_Comm_split(comm_, color, key, &part), "MPI_Comm_split");
        std::vector<int> ranks;
        for (auto m : members) ranks.push_back(ranks_[static_cast<std::size_t>(m)]);
        return std::make_shared<mpi_communicator>(part, true, std::move(ranks));
    }

private:
    enum kind : std::uint64_t { reduce_kind, gather_kind, broadcast_kind };
    static const char* kind_name(std::uint64_t k) {
        return k == reduce_kind ? "all-reduce" : k == gather_kind ? "all-gather" : k == broadcast_kind ? "broadcast" : "?";
    }
    enum tag : int { question_tag = 1, answer_tag = 2 };

    void reduce(void* data, std::int64_t count, MPI_Datatype type, MPI_Op op) {
        const int n = detail::mpi_count(static_cast<std::uint64_t>(count), "all_reduce's element count");
        collective(reduce_kind, [&](MPI_Request* req) {
            detail::mpi_check(MPI_Iallreduce(MPI_IN_PLACE, data, n, type, op, comm_, req), "MPI_Iallreduce");
        });
    }

    // Starts collective number ++number_ and waits for it: MPI_Test in a loop,
    // spinning briefly (the exchanges of a decode step are microseconds apart;
    // longer spins cost much when both ranks share a core), then yielding, then
    // after 10 ms sleeping 100 us at a time, so a long wait does not hold a core.
    // Once past the spin it also answers the other ranks' questions.
    template <class Start>
    void collective(kind k, Start start) {
        if (!failure_.empty()) throw error(failure_);
        ++number_;
        kind_ = k;
        MPI_Request req = MPI_REQUEST_NULL;
        start(&req);
        int done = 0;
        for (int i = 0; i < 100 && !done; ++i) detail::mpi_check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test");
        const auto begin = std::chrono::steady_clock::now();
        while (!done) {
            answer_questions();
            const auto waited = std::chrono::steady_clock::now() - begin;
            if (timeout().count() > 0 && waited >= timeout()) time_out();
            if (waited < std::chrono::milliseconds(10)) std::this_thread::yield();
            else std::this_thread::sleep_for(std::chrono::microseconds(100));
            detail::mpi_check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test");
        }
    }

    // Tells each rank that asked which collective this one is waiting in. Each
    // rank asks at most once (then it is failed), so the answers stay few.
    void answer_questions() {
        for (;;) {
            int asked = 0;
            MPI_Status st;
            detail::mpi_check(MPI_Iprobe(MPI_ANY_SOURCE, question_tag, side_, &asked, &st), "MPI_Iprobe");
            if (!asked) return;
            std::uint64_t question = 0;
            detail::mpi_check(MPI_Recv(&question, 1, MPI_UINT64_T, st.MPI_SOURCE, question_tag, side_, MPI_STATUS_IGNORE), "MPI_Recv");
            answers_.push_back({number_, kind_});  // a deque: each buffer stays put while MPI sends it
            MPI_Request sent = MPI_REQUEST_NULL;
            detail::mpi_check(MPI_Isend(answers_.back().data(), 2, MPI_UINT64_T, st.MPI_SOURCE, answer_tag, side_, &sent), "MPI_Isend");
            MPI_Request_free(&sent);  // completes on its own
        }
    }

    // The timeout passed: asks the others where they are, waits up to a second
    // for their answers (answering theirs), fails with the ranks that did not
    // answer, or, when all did, with where each one is waiting.
    [[noreturn]] void time_out() {
        question_ = number_;
        std::vector<MPI_Request> asked;
        for (int r = 0; r < size_; ++r) {
            if (r == rank_) continue;
            asked.push_back(MPI_REQUEST_NULL);
            detail::mpi_check(MPI_Isend(&question_, 1, MPI_UINT64_T, r, question_tag, side_, &asked.back()), "MPI_Isend");
        }
        std::vector<std::array<std::uint64_t, 2>> where(static_cast<std::size_t>(size_));
        std::vector<bool> answered(static_cast<std::size_t>(size_));
        answered[static_cast<std::size_t>(rank_)] = true;
        int pending = size_ - 1;
        const auto grace = std::clamp(timeout(), std::chrono::milliseconds(100), std::chrono::milliseconds(1000));
        const auto until = std::chrono::steady_clock::now() + grace;
        while (pending > 0 && std::chrono::steady_clock::now() < until) {
            answer_questions();
            int got = 0;
            MPI_Status st;
            detail::mpi_check(MPI_Iprobe(MPI_ANY_SOURCE, answer_tag, side_, &got, &st), "MPI_Iprobe");
            if (!got) {
                std::this_thread::sleep_for(std::chrono::microseconds(100));
                continue;
            }
            auto& w = where[static_cast<std::size_t>(st.MPI_SOURCE)];
            detail::mpi_check(MPI_Recv(w.data(), 2, MPI_UINT64_T, st.MPI_SOURCE, answer_tag, side_, MPI_STATUS_IGNORE), "MPI_Recv");
            if (!answered[static_cast<std::size_t>(st.MPI_SOURCE)]) --pending;
            answered[static_cast<std::size_t>(st.MPI_SOURCE)] = true;
        }
        // The questions to ranks that never receive them stay pending: the job ends.
        for (auto& a : asked) MPI_Request_free(&a);
        std::vector<int> missing;
        for (int r = 0; r < size_; ++r)
            if (!answered[static_cast<std::size_t>(r)]) missing.push_back(ranks_[static_cast<std::size_t>(r)]);
        if (!missing.empty()) {
            failure_ = cpu::detail::timeout_message(missing, kind_name(kind_), timeout());
        } else {
            failure_ = "parallel ranks: the " + std::string(kind_name(kind_)) + " (collective " + std::to_string(number_) +
                       ") did not finish " + cpu::detail::within(timeout()) + ", though every rank is waiting in one:";
            for (int r = 0; r < size_; ++r) {
                const auto& w = where[static_cast<std::size_t>(r)];
                if (r != rank_) failure_ += " rank " + std::to_string(ranks_[static_cast<std::size_t>(r)]) + " in " + kind_name(w[1]) + " " + std::to_string(w[0]) + ";";
            }
            failure_.pop_back();
        }
        throw error(failure_);
    }

    MPI_Comm comm_, side_ = MPI_COMM_NULL;
    bool owned_ = false;
    std::vector<int> ranks_;
    int rank_ = 0, size_ = 1;
    std::vector<float> wide_;
    std::uint64_t number_ = 0;  // collectives started
    std::uint64_t kind_ = reduce_kind;
    std::uint64_t question_ = 0;
    std::deque<std::array<std::uint64_t, 2>> answers_;
    std::string failure_;  // set by a timeout: every later collective throws it
};

// MPI_Init on construction, MPI_Finalize on destruction; world() is MPI_COMM_WORLD.
class mpi_session {
public:
    mpi_session(int* argc, char*** argv) {
        int ready = 0;
        MPI_Initialized(&ready);
        if (!ready) {
            detail::mpi_check(MPI_Init(argc, argv), "MPI_Init");
            owned_ = true;
        }
        world_ = std::make_unique<mpi_communicator>(MPI_COMM_WORLD);
    }
    ~mpi_session() {
        world_.reset();
        if (owned_) MPI_Finalize();
    }
    mpi_session(const mpi_session&) = delete;
    mpi_session& operator=(const mpi_session&) = delete;
    int size() const { return world_->size(); }
    int rank() const { return world_->rank(); }
    mpi_communicator& world() { return *world_; }

private:
    bool owned_ = false;
    std::unique_ptr<mpi_communicator> world_;
};

}  // namespace scribe::parallel
