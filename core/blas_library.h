// OpenBLAS, loaded at run time (dlopen) by libnanoattn so that it can pick the kernels before
// OpenBLAS initialises (nanoattn/blas_kernels.h). Internal to core: the rest calls blas.h.
#pragma once
#include "nanoattn/blas_kernels.h"

namespace na::blas_library {

struct Functions {
  SgemmFn sgemm = nullptr;
  void (*set_num_threads)(int) = nullptr;
  char* (*corename)() = nullptr;
  int (*parallel)() = nullptr;  // 0 sequential, 1 pthreads, 2 OpenMP
};

// The loaded library's functions; the first call loads and chooses (blas_choice()).
const Functions& functions();

}  // namespace na::blas_library
