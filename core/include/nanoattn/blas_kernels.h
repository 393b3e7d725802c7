// Which OpenBLAS kernels run: chosen, not left to chance. An OpenBLAS older than the CPU runs its
// generic pre-AVX kernels on a CPU it does not know (sgemm, most of a training step, 3-6x
// slower). libnanoattn therefore loads OpenBLAS itself (dlopen, when it is loaded) and, when
// OpenBLAS picked kernels below what the CPU supports and the user did not set
// OPENBLAS_CORETYPE, loads it again with the matching kernels, proves them with a self-check,
// and falls back to OpenBLAS's own choice with a warning if the check fails.
#pragma once
#include <functional>
#include <string>

namespace na {

// The x86-64 extensions that tell OpenBLAS's kernel sets apart.
struct CpuFeatures {
  bool avx = false, avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
};
CpuFeatures cpu_features();  // this CPU's (all false off x86-64)

// What to ask OpenBLAS for, given the kernels it picked on its own and OPENBLAS_CORETYPE as
// found in the environment ("" = unset). `force` empty: keep its choice; `why` says which case.
struct KernelDecision {
  std::string force, why;
};
KernelDecision decide_blas_kernels(const std::string& openblas_choice, const std::string& user_setting,
                                   const CpuFeatures& cpu);

// The loading sequence over an interface, so that tests drive it with fakes.
struct BlasLoader {
  std::function<std::string(const std::string& coretype)> open;  // load with OPENBLAS_CORETYPE=coretype
                                                                 // ("": the environment as it is);
                                                                 // returns the kernels OpenBLAS runs
  std::function<void()> close;                                   // unload
  std::function<std::string()> self_check;                       // "" if sgemm is right, else what was wrong
};
struct BlasChoice {
  std::string kernels, why;  // e.g. "SkylakeX", "chosen by nanoattn: OpenBLAS picked 'Prescott' ..."
  std::string warning;       // one line when the chosen kernels failed their self-check ("" otherwise)
};
BlasChoice choose_blas_kernels(const BlasLoader& loader, const std::string& user_setting, const CpuFeatures& cpu);

// cblas_sgemm's signature (row-major 101, no transpose 111, transpose 112).
using SgemmFn = void (*)(int order, int trans_a, int trans_b, int M, int N, int K, float alpha, const float* A,
                         int lda, const float* B, int ldb, float beta, float* C, int ldc);
// A few sgemm shapes (both transposes, alpha, beta, odd sizes) against a double-precision
// reference; an error is allowed 4 K u sum|a_ik b_kj| (+ |beta c|). "" if all agree, else the first
// shape that did not.
std::string sgemm_self_check(SgemmFn sgemm);

// This process's choice (made when libnanoattn loads).
const BlasChoice& blas_choice();

}  // namespace na
