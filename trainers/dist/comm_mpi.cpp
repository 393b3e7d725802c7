// The Open MPI communicator (compiled only when CMake found MPI): MPI_COMM_WORLD.
// The C API only: without these, mpi.h in C++ pulls in the deprecated C++ bindings (libmpi_cxx).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <cstdio>

#include "dist/comm.h"
#include "nanoattn/error.h"

namespace na {
namespace {

class MpiComm final : public Comm {
 public:
  MpiComm() {
    int provided = 0;
    // Only the main thread calls MPI (TBB's workers never do).
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiComm() override { MPI_Finalize(); }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allgather(const float* mine, size_t n, float* all) override { gather(mine, n, all, MPI_FLOAT); }
  void allgather(const double* mine, size_t n, double* all) override { gather(mine, n, all, MPI_DOUBLE); }
  int64_t max(int64_t v) override {
    int64_t out = 0;
    check(MPI_Allreduce(&v, &out, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
    return out;
  }
  void broadcast(int64_t* v, size_t n) override {
    check(MPI_Bcast(v, static_cast<int>(n), MPI_INT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast");
  }
  void broadcast(double* v, size_t n) override {
    check(MPI_Bcast(v, static_cast<int>(n), MPI_DOUBLE, 0, MPI_COMM_WORLD), "MPI_Bcast");
  }
  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
  void abort(int code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
  }

 private:
  static void check(int rc, const char* what) { NA_CHECK(rc == MPI_SUCCESS, what, "failed with MPI error ", rc); }
  void gather(const void* mine, size_t n, void* all, MPI_Datatype type) {
    NA_CHECK(n < (size_t(1) << 31), "MPI_Allgather", n, " values per rank: more than an MPI count holds");
    check(MPI_Allgather(mine, static_cast<int>(n), type, all, static_cast<int>(n), type, MPI_COMM_WORLD),
          "MPI_Allgather");
  }

  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Comm> make_mpi_comm() { return std::make_unique<MpiComm>(); }
bool mpi_built() { return true; }

}  // namespace na
