// A program outside the project that takes parallel/mpi.hpp, the one header that
// needs MPI, through scribe-mpi.pc: it compiles with MPI's header and links with
// MPI's library (it is linked, not run: a run belongs under mpirun).
#include <scribe/parallel/mpi.hpp>

int main(int argc, char** argv) {
    scribe::parallel::mpi_session mpi(&argc, &argv);
    return mpi.size() < 1;
}
