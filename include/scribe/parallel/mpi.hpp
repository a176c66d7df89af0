// scribe/parallel/mpi.hpp — ranks as processes: a cpu::communicator over MPI
// (OpenMPI), for `mpirun -np N scribe generate --tp N ...`. Needs <mpi.h> and
// linking with MPI; the rest of Scribe does not.
//
//     parallel::mpi_session mpi(&argc, &argv);          // MPI_Init / MPI_Finalize
//     runtime::decoder<F> lm(dir, {.tp = mpi.size(), .comm = &mpi.world()});
//
// Reductions run in f32 (16-bit values are widened, reduced, rounded once, as
// kernels::all_reduce does); every rank gets the same bytes.
#pragma once

// The C API only: OpenMPI's and MPICH's deprecated C++ bindings do not build warning-free.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <string>
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
}  // namespace detail

class mpi_communicator final : public cpu::communicator {
public:
    explicit mpi_communicator(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
        detail::mpi_check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
        detail::mpi_check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
        // Errors come back as return codes (and become exceptions) instead of aborting.
        MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    }
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
        detail::mpi_check(MPI_Allgather(in, static_cast<int>(bytes), MPI_BYTE, out, static_cast<int>(bytes), MPI_BYTE, comm_),
                          "MPI_Allgather");
    }
    void broadcast(void* data, std::size_t bytes, int root) override {
        detail::mpi_check(MPI_Bcast(data, static_cast<int>(bytes), MPI_BYTE, root, comm_), "MPI_Bcast");
    }
    // A failed rank ends the whole job: the others would wait for it forever.
    void abort() noexcept override { MPI_Abort(comm_, 1); }

private:
    void reduce(void* data, std::int64_t count, MPI_Datatype type, MPI_Op op) {
        detail::mpi_check(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), type, op, comm_), "MPI_Allreduce");
    }
    MPI_Comm comm_;
    int rank_ = 0, size_ = 1;
    std::vector<float> wide_;
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
