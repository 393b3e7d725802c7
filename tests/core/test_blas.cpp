// Which OpenBLAS kernels run (blas_kernels.h): the decision over CPU features x OpenBLAS's own
// choice x the user's OPENBLAS_CORETYPE, the load / self-check / fall-back sequence (driven with
// a fake loader), the self-check itself, and this process's choice. (gemm itself is tested
// through matmul and linear in tests/ops.)
#include <doctest/doctest.h>

#include <strings.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "nanoattn/blas.h"
#include "nanoattn/blas_kernels.h"
#include "nanoattn/error.h"

using namespace na;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

CpuFeatures sse_cpu() { return {}; }
CpuFeatures avx_cpu() {
  CpuFeatures c;
  c.avx = true;
  return c;
}
CpuFeatures avx2_cpu() {
  CpuFeatures c = avx_cpu();
  c.avx2 = c.fma = true;
  return c;
}
CpuFeatures avx512_cpu() {
  CpuFeatures c = avx2_cpu();
  c.avx512f = c.avx512bw = c.avx512dq = c.avx512vl = true;
  return c;
}

// A plain row-major sgemm, optionally broken in one way.
enum class Bug { none, ignore_beta, drop_last_k, transpose_b };
Bug bug = Bug::none;
void plain_sgemm(int, int ta, int tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                 int ldb, float beta, float* C, int ldc) {
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double s = 0;
      for (int k = 0; k < K - (bug == Bug::drop_last_k ? 1 : 0); ++k) {
        const float a = ta == 112 ? A[k * lda + i] : A[i * lda + k];
        const bool trans_b = tb == 112 && !(bug == Bug::transpose_b && K == N);  // square: reads B as stored
        const float b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        s += double(a) * b;
      }
      float& c = C[i * ldc + j];
      c = static_cast<float>(alpha * s + (bug == Bug::ignore_beta || beta == 0 ? 0.0 : beta * c));
    }
}

// A loader whose OpenBLAS picks `own` when not told otherwise; records what was asked.
struct FakeBlas {
  explicit FakeBlas(std::string own_kernels, bool fail_check = false, bool ignore_request = false)
      : own(std::move(own_kernels)), check_fails(fail_check), ignores_request(ignore_request) {}
  std::string own, loaded;
  bool check_fails, ignores_request;
  std::vector<std::string> log;
  BlasLoader loader() {
    BlasLoader l;
    l.open = [this](const std::string& coretype) {
      log.push_back("open " + coretype);
      loaded = coretype.empty() || ignores_request ? own : coretype;
      return loaded;
    };
    l.close = [this] { log.push_back("close"); };
    l.self_check = [this] { return check_fails && loaded != own ? std::string("C[0,0] wrong") : std::string(); };
    return l;
  }
};

}  // namespace

TEST_CASE("decide_blas_kernels: kernels below what the CPU supports are replaced, unless the user chose") {
  // The case of this project's Intel VMs: OpenBLAS 0.3.21 does not know the CPU and picks Prescott.
  KernelDecision d = decide_blas_kernels("Prescott", "", avx512_cpu());
  CHECK(d.force == "SkylakeX");
  CHECK(contains(d.why, "'Prescott'"));
  CHECK(contains(d.why, "AVX-512"));
  CHECK(decide_blas_kernels("Nehalem", "", avx2_cpu()).force == "Haswell");
  CHECK(decide_blas_kernels("Sandybridge", "", avx2_cpu()).force == "Haswell");  // AVX kernels on an AVX2 CPU
  CHECK(decide_blas_kernels("Haswell", "", avx512_cpu()).force == "SkylakeX");    // AVX2 kernels on AVX-512
  CHECK(decide_blas_kernels("Zen", "", avx512_cpu()).force == "SkylakeX");
  // Nothing better to ask for.
  for (const char* good : {"SkylakeX", "Cooperlake", "SapphireRapids"})
    CHECK(decide_blas_kernels(good, "", avx512_cpu()).force.empty());
  CHECK(decide_blas_kernels("Haswell", "", avx2_cpu()).force.empty());
  CHECK(decide_blas_kernels("Zen", "", avx2_cpu()).force.empty());
  CHECK(decide_blas_kernels("Prescott", "", sse_cpu()).force.empty());
  CHECK(decide_blas_kernels("Prescott", "", avx_cpu()).force.empty());  // Sandybridge's kernels: not worth a reload
  CHECK(decide_blas_kernels("SomethingNew", "", avx512_cpu()).force.empty());  // unknown names are left alone
  // AVX-512 without all of F, BW, DQ, VL (e.g. Xeon Phi) gets AVX2 kernels.
  CpuFeatures phi = avx512_cpu();
  phi.avx512bw = phi.avx512dq = phi.avx512vl = false;
  CHECK(decide_blas_kernels("Prescott", "", phi).force == "Haswell");
  // The user's setting always wins, even a slow one.
  d = decide_blas_kernels("Prescott", "Prescott", avx512_cpu());
  CHECK(d.force.empty());
  CHECK(d.why == "set by OPENBLAS_CORETYPE=Prescott");
  CHECK(decide_blas_kernels("Haswell", "Haswell", avx512_cpu()).force.empty());
}

TEST_CASE("choose_blas_kernels: reload with the better kernels, keep them if the self-check passes") {
  FakeBlas blas("Prescott");
  BlasChoice c = choose_blas_kernels(blas.loader(), "", avx512_cpu());
  CHECK(c.kernels == "SkylakeX");
  CHECK(contains(c.why, "chosen by nanoattn"));
  CHECK(contains(c.why, "self-check passed"));
  CHECK(c.warning.empty());
  CHECK(blas.log == std::vector<std::string>{"open ", "close", "open SkylakeX"});
}

TEST_CASE("choose_blas_kernels: falls back to OpenBLAS's own choice, with one warning line") {
  FakeBlas blas("Prescott", /*fail_check=*/true);
  BlasChoice c = choose_blas_kernels(blas.loader(), "", avx512_cpu());
  CHECK(c.kernels == "Prescott");
  CHECK(contains(c.warning, "'SkylakeX' kernels failed nanoattn's sgemm self-check (C[0,0] wrong)"));
  CHECK(c.warning.find('\n') == std::string::npos);
  CHECK(blas.log == std::vector<std::string>{"open ", "close", "open SkylakeX", "close", "open "});
  // An OpenBLAS that does not run what it was asked for counts as a failed check.
  FakeBlas stubborn("Prescott", false, /*ignore_request=*/true);
  c = choose_blas_kernels(stubborn.loader(), "", avx2_cpu());
  CHECK(c.kernels == "Prescott");
  CHECK(contains(c.warning, "OpenBLAS ran 'Prescott' when asked for it"));
}

TEST_CASE("choose_blas_kernels: never overrides the user or a good choice (one load)") {
  FakeBlas user("Prescott");
  BlasChoice c = choose_blas_kernels(user.loader(), "Prescott", avx512_cpu());
  CHECK(c.kernels == "Prescott");
  CHECK(c.why == "set by OPENBLAS_CORETYPE=Prescott");
  CHECK(user.log == std::vector<std::string>{"open "});
  FakeBlas good("Haswell");
  c = choose_blas_kernels(good.loader(), "", avx2_cpu());
  CHECK(c.kernels == "Haswell");
  CHECK(c.why == "OpenBLAS's choice for this CPU");
  CHECK(good.log.size() == 1);
}

TEST_CASE("sgemm_self_check passes a correct sgemm and OpenBLAS's, fails a dropped term, beta or transpose") {
  bug = Bug::none;
  CHECK(sgemm_self_check(plain_sgemm) == "");
  for (Bug b : {Bug::ignore_beta, Bug::drop_last_k, Bug::transpose_b}) {
    bug = b;
    const std::string why = sgemm_self_check(plain_sgemm);
    CHECK_MESSAGE(contains(why, "expected"), "bug ", int(b), ": ", why);
  }
  bug = Bug::none;
}

TEST_CASE("this process: the kernels OpenBLAS runs, and the user's setting is kept") {
  const BlasChoice& c = blas_choice();
  CHECK(c.kernels == blas_kernels());
  CHECK(!c.kernels.empty());
  CHECK(c.kernels != "unknown");
  CHECK(c.warning.empty());
  const char* user = std::getenv("OPENBLAS_CORETYPE");
  if (user && *user) {  // as OpenBLAS, an empty value counts as unset; names are case-insensitive
    CHECK(strcasecmp(c.kernels.c_str(), user) == 0);
    CHECK(c.why == std::string("set by OPENBLAS_CORETYPE=") + user);
  } else {
    // What nanoattn asked for (or kept) is at least what the decision wants.
    const KernelDecision d = decide_blas_kernels(c.kernels, "", cpu_features());
    CHECK_MESSAGE(d.force.empty(), c.kernels, " still below what this CPU supports: ", d.why);
  }
}

TEST_CASE("sgemm: a size or leading dimension of 2^31 or more is refused, not wrapped") {
  // Nothing is allocated: the check comes before any element is read (null pointers).
  const int64_t big = int64_t(1) << 31;
  CHECK_THROWS_WITH_AS(gemm_serial(false, false, big, 4, 4, 1.0f, nullptr, 4, nullptr, 4, 0.0f, nullptr, 4),
                       doctest::Contains("M 2147483648, N 4, K 4"), Error);
  CHECK_THROWS_WITH_AS(gemm(false, false, 4, 4, 4, 1.0f, nullptr, big, nullptr, 4, 0.0f, nullptr, 4),
                       doctest::Contains("each must be < 2^31"), Error);
  CHECK_THROWS_AS(gemm_serial(true, false, 4, 4, big, 1.0f, nullptr, 4, nullptr, 4, 0.0f, nullptr, 4), Error);
}
