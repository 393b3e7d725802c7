#include "dist/comm.h"

#include <cstdlib>
#include <cstring>

#include "nanoattn/error.h"

namespace na {

void Comm::allgather(const float* mine, size_t n, float* all) { std::memcpy(all, mine, n * sizeof(float)); }
void Comm::allgather(const double* mine, size_t n, double* all) { std::memcpy(all, mine, n * sizeof(double)); }
void Comm::abort(int code) { std::exit(code); }

namespace {
std::unique_ptr<Comm>& current() {
  static std::unique_ptr<Comm> c = std::make_unique<Comm>();
  return c;
}
bool launched_by_mpirun() { return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK"); }
}  // namespace

Comm& comm() { return *current(); }

void init_comm() {
  if (!launched_by_mpirun()) return;
  NA_CHECK(mpi_built(), "mpirun",
           "this nanoattn was built without MPI, so it cannot train data-parallel: install Open MPI "
           "(tools/setup.sh installs libopenmpi-dev and openmpi-bin), then configure and build again "
           "(cmake finds it; -DNANOATTN_MPI=ON, the default); or run without mpirun");
  current() = make_mpi_comm();
}

void finalize_comm() { current().reset(new Comm()); }  // the MPI communicator's destructor finalizes

int local_ranks() {
  const char* s = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  const int n = s ? std::atoi(s) : 1;
  return n > 0 ? n : 1;
}

#ifndef NANOATTN_HAVE_MPI
std::unique_ptr<Comm> make_mpi_comm() { return nullptr; }
bool mpi_built() { return false; }
#endif

}  // namespace na
