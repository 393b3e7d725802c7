#include "nanoattn/blas_kernels.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <vector>

#include "nanoattn/error.h"

namespace na {

namespace {

// OpenBLAS's x86-64 kernel sets (0.3.21) by the widest vectors they use: 0 SSE, 1 AVX, 2 AVX2 +
// FMA, 3 AVX-512. A name not listed is left alone.
int kernel_level(const std::string& name) {
  static const std::map<std::string, int> levels = {
      {"Prescott", 0},    {"Core2", 0},       {"Penryn", 0},   {"Dunnington", 0},  {"Nehalem", 0},
      {"Atom", 0},        {"Opteron", 0},     {"Opteron_SSE3", 0}, {"Barcelona", 0}, {"Bobcat", 0},
      {"Sandybridge", 1}, {"Bulldozer", 1},   {"Piledriver", 1}, {"Steamroller", 1},
      {"Haswell", 2},     {"Zen", 2},         {"Excavator", 2},
      {"SkylakeX", 3},    {"Cooperlake", 3},  {"SapphireRapids", 3}};
  const auto it = levels.find(name);
  return it == levels.end() ? -1 : it->second;
}

int cpu_level(const CpuFeatures& c) {
  if (c.avx512f && c.avx512bw && c.avx512dq && c.avx512vl && c.avx2 && c.fma) return 3;
  if (c.avx2 && c.fma) return 2;
  return c.avx ? 1 : 0;
}

}  // namespace

CpuFeatures cpu_features() {
  CpuFeatures c;
#if defined(__x86_64__)
  __builtin_cpu_init();
  c.avx = __builtin_cpu_supports("avx");
  c.avx2 = __builtin_cpu_supports("avx2");
  c.fma = __builtin_cpu_supports("fma");
  c.avx512f = __builtin_cpu_supports("avx512f");
  c.avx512bw = __builtin_cpu_supports("avx512bw");
  c.avx512dq = __builtin_cpu_supports("avx512dq");
  c.avx512vl = __builtin_cpu_supports("avx512vl");
#endif
  return c;
}

KernelDecision decide_blas_kernels(const std::string& openblas_choice, const std::string& user_setting,
                                   const CpuFeatures& cpu) {
  if (!user_setting.empty()) return {"", "set by OPENBLAS_CORETYPE=" + user_setting};
  const int have = kernel_level(openblas_choice), can = cpu_level(cpu);
  if (have < 0 || have >= can || can < 2) return {"", "OpenBLAS's choice for this CPU"};
  const std::string better = can == 3 ? "SkylakeX" : "Haswell";
  return {better, cat("chosen by nanoattn: OpenBLAS picked '", openblas_choice, "' on a CPU with ",
                      can == 3 ? "AVX-512 (F, BW, DQ, VL)" : "AVX2 and FMA")};
}

BlasChoice choose_blas_kernels(const BlasLoader& loader, const std::string& user_setting, const CpuFeatures& cpu) {
  const std::string own = loader.open("");
  const KernelDecision d = decide_blas_kernels(own, user_setting, cpu);
  if (d.force.empty()) return {own, d.why, ""};
  loader.close();
  const std::string forced = loader.open(d.force);
  const std::string wrong = forced != d.force ? cat("OpenBLAS ran '", forced, "' when asked for it") : loader.self_check();
  if (wrong.empty()) return {forced, d.why + "; self-check passed", ""};
  loader.close();
  const std::string again = loader.open("");
  return {again, "OpenBLAS's choice (nanoattn's failed its self-check)",
          cat("nanoattn: warning: OpenBLAS's '", d.force, "' kernels failed nanoattn's sgemm self-check (", wrong,
              "); running OpenBLAS's own '", again, "' kernels, which may be several times slower")};
}

std::string sgemm_self_check(SgemmFn sgemm) {
  struct Case {
    bool ta, tb;
    int M, N, K;
    float alpha, beta;
  };
  static const Case cases[] = {{false, false, 1, 1, 1, 1.0f, 0.0f},      {false, false, 7, 13, 5, 1.0f, 0.0f},
                               {false, true, 64, 48, 96, 1.0f, 1.0f},     {false, true, 40, 40, 40, 1.0f, 0.0f},
                               {true, false, 33, 65, 17, 0.5f, 0.0f},
                               {true, true, 129, 31, 257, -1.0f, 0.25f}, {false, false, 200, 96, 1000, 1.0f, 1.0f}};
  uint32_t state = 12345;
  auto next = [&] {  // uniform in [-1, 1): any fixed numbers do
    state = state * 1664525u + 1013904223u;
    return static_cast<float>(state >> 8) / 8388608.0f - 1.0f;
  };
  for (const Case& c : cases) {
    std::vector<float> a(static_cast<size_t>(c.M) * c.K), b(static_cast<size_t>(c.K) * c.N),
        out(static_cast<size_t>(c.M) * c.N);
    for (float& v : a) v = next();
    for (float& v : b) v = next();
    for (float& v : out) v = next();
    const std::vector<float> before = out;
    const int lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N;
    sgemm(101, c.ta ? 112 : 111, c.tb ? 112 : 111, c.M, c.N, c.K, c.alpha, a.data(), lda, b.data(), ldb, c.beta,
          out.data(), c.N);
    for (int i = 0; i < c.M; ++i)
      for (int j = 0; j < c.N; ++j) {
        double sum = 0, mag = 0;
        for (int k = 0; k < c.K; ++k) {
          const double x = c.ta ? a[size_t(k) * lda + i] : a[size_t(i) * lda + k];
          const double y = c.tb ? b[size_t(j) * ldb + k] : b[size_t(k) * ldb + j];
          sum += x * y;
          mag += std::fabs(x * y);
        }
        const double c0 = before[size_t(i) * c.N + j];
        const double want = c.alpha * sum + c.beta * c0;
        const double bound = 4.0 * (c.K + 2) * 0x1p-24 * (std::fabs(c.alpha) * mag + std::fabs(c.beta * c0)) + 1e-30;
        const double got = out[size_t(i) * c.N + j];
        if (!(std::fabs(got - want) <= bound))
          return cat("C[", i, ",", j, "] of a ", c.M, "x", c.K, (c.ta ? "^T" : ""), " by ", c.K, "x", c.N,
                     (c.tb ? "^T" : ""), " product is ", got, ", expected ", want, " within ", bound);
      }
  }
  return "";
}

}  // namespace na
