// The sgemm wrapper's report of OpenBLAS's kernels, and the advice given when they are slower
// than the CPU allows. (gemm itself is tested through matmul and linear in tests/ops.)
#include <doctest/doctest.h>

#include <string>

#include "nanoattn/blas.h"

using namespace na;

namespace {
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("blas_kernels names the kernels OpenBLAS chose") {
  const std::string k = blas_kernels();
  CHECK(!k.empty());
  CHECK(k != "unknown");
}

TEST_CASE("blas_kernel_advice: the faster setting when generic kernels run on an AVX CPU") {
  // The case of this project's VM: OpenBLAS 0.3.21 does not know the CPU and picks Prescott.
  const std::string avx512 = blas_kernel_advice("Prescott", false, true, true);
  CHECK(contains(avx512, "'Prescott'"));
  CHECK(contains(avx512, "AVX-512"));
  CHECK(contains(avx512, "OPENBLAS_CORETYPE=SkylakeX"));
  const std::string avx2 = blas_kernel_advice("Nehalem", false, true, false);
  CHECK(contains(avx2, "'Nehalem'"));
  CHECK(contains(avx2, "OPENBLAS_CORETYPE=Haswell"));
}

TEST_CASE("blas_kernel_advice: silent when there is nothing to gain or the setting was chosen") {
  CHECK(blas_kernel_advice("Prescott", /*coretype_set=*/true, true, true).empty());
  CHECK(blas_kernel_advice("Haswell", false, true, true).empty());   // AVX2 kernels already
  CHECK(blas_kernel_advice("SkylakeX", false, true, true).empty());
  CHECK(blas_kernel_advice("Prescott", false, false, false).empty());  // an SSE-only CPU
}
