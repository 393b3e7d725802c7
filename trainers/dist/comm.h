// The processes of a data-parallel run: one (plain `nanoattn run`), or the ranks of an Open MPI
// job (`mpirun -np N nanoattn run ...`). Only what training needs: gathers in rank order (so
// every rank can sum per-micro-batch gradients in one fixed order: never MPI_SUM, whose order
// is unspecified), a max over small integers (agreed stop decisions), broadcasts from rank 0.
// Every call is collective: all ranks make it, in the same order.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace na {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const { return 0; }
  virtual int size() const { return 1; }
  bool leader() const { return rank() == 0; }  // writes the run's files
  // all = every rank's `mine` (n values each) concatenated in rank order.
  virtual void allgather(const float* mine, size_t n, float* all);
  virtual void allgather(const double* mine, size_t n, double* all);
  virtual int64_t max(int64_t v) { return v; }
  virtual void broadcast(int64_t* v, size_t n) { (void)v, (void)n; }  // rank 0's values to all
  virtual void broadcast(double* v, size_t n) { (void)v, (void)n; }
  virtual void barrier() {}
  // Ends every rank of the job (an error on one rank must not leave the others waiting).
  virtual void abort(int code);
};

// This process's communicator: a single process until init_comm() found mpirun.
Comm& comm();

// Called first thing in main: under mpirun (OMPI_COMM_WORLD_SIZE or PMIX_RANK in the
// environment) initialises MPI; a build without MPI throws na::Error saying how to get it.
// Plain `nanoattn` never touches MPI.
void init_comm();
// MPI_Finalize when MPI was initialised; otherwise nothing.
void finalize_comm();

// The ranks of this job on this machine (OMPI_COMM_WORLD_LOCAL_SIZE), 1 without mpirun: each
// rank's default thread count is the cores divided among them.
int local_ranks();

// Defined by comm_mpi.cpp, compiled only when CMake found MPI (NANOATTN_HAVE_MPI).
std::unique_ptr<Comm> make_mpi_comm();
bool mpi_built();

}  // namespace na
