#include "blas_library.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "nanoattn/error.h"

namespace na::blas_library {

namespace {

constexpr const char* kLibrary = "libopenblas.so.0";

struct Loaded {
  void* handle = nullptr;
  Functions f;
  BlasChoice choice;
};

template <class F>
F symbol(void* handle, const char* name) {
  void* p = dlsym(handle, name);
  NA_CHECK(p, kLibrary, "has no '", name, "': nanoattn needs OpenBLAS (install libopenblas0-pthread; tools/setup.sh does)");
  return reinterpret_cast<F>(p);
}

// Loads OpenBLAS with OPENBLAS_CORETYPE=coretype for its initialisation only (unset again after,
// so that the processes this one starts choose for themselves).
std::string open(Loaded& l, const std::string& coretype) {
  if (!coretype.empty()) setenv("OPENBLAS_CORETYPE", coretype.c_str(), 1);
  l.handle = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
  if (!coretype.empty()) unsetenv("OPENBLAS_CORETYPE");
  NA_CHECK(l.handle, kLibrary, "cannot be loaded (", dlerror(), "): install libopenblas0-pthread (tools/setup.sh does)");
  l.f.sgemm = symbol<SgemmFn>(l.handle, "cblas_sgemm");
  l.f.set_num_threads = symbol<void (*)(int)>(l.handle, "openblas_set_num_threads");
  l.f.corename = symbol<char* (*)()>(l.handle, "openblas_get_corename");
  l.f.parallel = symbol<int (*)()>(l.handle, "openblas_get_parallel");
  const char* name = l.f.corename();
  return name ? name : "unknown";
}

Loaded load() {
  Loaded l;
  const char* user = std::getenv("OPENBLAS_CORETYPE");
  if (void* already = dlopen(kLibrary, RTLD_NOW | RTLD_NOLOAD)) {
    // The program links OpenBLAS itself: it initialised before nanoattn could choose.
    dlclose(already);
    const std::string kernels = open(l, "");
    const KernelDecision d = decide_blas_kernels(kernels, user ? user : "", cpu_features());
    l.choice = {kernels, d.force.empty() ? d.why : "OpenBLAS's choice (the program loaded it before nanoattn could choose)",
                d.force.empty() ? "" : cat("nanoattn: note: OpenBLAS runs its '", kernels, "' kernels; OPENBLAS_CORETYPE=",
                                           d.force, " in the environment would run faster ones")};
  } else {
    BlasLoader loader;
    loader.open = [&](const std::string& coretype) { return open(l, coretype); };
    loader.close = [&] {
      dlclose(l.handle);
      l = Loaded{};
    };
    loader.self_check = [&] { return sgemm_self_check(l.f.sgemm); };
    BlasChoice choice = choose_blas_kernels(loader, user ? user : "", cpu_features());
    l.choice = std::move(choice);
  }
  // OpenBLAS runs single-threaded inside TBB tasks; an OpenMP build would ignore that inside
  // worker threads and oversubscribe badly, so say so.
  l.f.set_num_threads(1);
  if (l.f.parallel() == 2)
    std::fprintf(stderr, "nanoattn: warning: OpenBLAS is the OpenMP build; install libopenblas0-pthread "
                         "(tools/setup.sh does) for correct speed\n");
  if (!l.choice.warning.empty()) std::fprintf(stderr, "%s\n", l.choice.warning.c_str());
  return l;
}

const Loaded& loaded() {
  static const Loaded l = load();  // never unloaded: OpenBLAS's threads outlive static destructors
  return l;
}

// Chooses when libnanoattn loads, while the process has one thread (setenv is not thread-safe).
const bool chosen_at_load = (loaded(), true);

}  // namespace

const Functions& functions() { return loaded().f; }

}  // namespace na::blas_library

namespace na {
const BlasChoice& blas_choice() { return blas_library::loaded().choice; }
}  // namespace na
