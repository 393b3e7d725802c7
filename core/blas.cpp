#include "nanoattn/blas.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <string>
#include <vector>

#include "blas_library.h"
#include "nanoattn/error.h"
#include "nanoattn/parallel.h"
#include "nanoattn/profile.h"
#include "nanoattn/rng.h"
#include "nanoattn/tensor.h"

namespace na {

namespace {

constexpr int64_t kSerialFlops = int64_t(1) << 21;   // below this, one call
constexpr int64_t kFlopsPerBlock = int64_t(1) << 24;  // target work per block
constexpr int64_t kMaxBlocks = 16;
constexpr int64_t kMinSplit = 32;  // a shorter split dimension runs in one call
// Every call packs the whole unsplit operand (K x the other dimension) again, so a block needs
// enough rows to pay for it: with 16-row blocks, the weight gradients' (256 x 256, K = 4096)
// products ran at half speed.
constexpr int64_t kMinBlockRows = 256;

}  // namespace

void set_blas_threads(int n) { blas_library::functions().set_num_threads(n); }

double sgemm_gflops(int64_t rows) {
  // Rows beyond 64k change no throughput: a 1M-token step would spend 5 GiB and a minute here.
  const int64_t M = std::clamp<int64_t>(rows, 1024, 65536), N = 1024, K = 256;
  Tensor a = Tensor::empty({M, K}), b = Tensor::empty({K, N}), c = Tensor::empty({M, N});
  fill_uniform(a, 1, -1, 1);
  fill_uniform(b, 2, -1, 1);
  std::vector<double> t;
  for (int i = 0; i < 7; ++i) {
    const auto s = std::chrono::steady_clock::now();
    gemm(false, false, M, N, K, 1.0f, a.data(), K, b.data(), N, 0.0f, c.data(), N);
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count());
  }
  std::sort(t.begin(), t.end());
  return 2.0 * M * N * K / t[t.size() / 2] / 1e9;
}

std::string blas_kernels() { return blas_choice().kernels; }

void gemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  // CBLAS takes int: a dimension or leading dimension of 2^31 or more would wrap around and
  // address the wrong memory (gemm() splits long row ranges; a wide leading dimension it cannot).
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  NA_CHECK(M <= kMax && N <= kMax && K <= kMax && lda <= kMax && ldb <= kMax && ldc <= kMax, "sgemm",
           "M ", M, ", N ", N, ", K ", K, ", lda ", lda, ", ldb ", ldb, ", ldc ", ldc,
           ": BLAS takes 32-bit sizes, each must be < 2^31; split the product into smaller ones");
  constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;  // CBLAS's enum values
  blas_library::functions().sgemm(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, static_cast<int>(M),
                                  static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(lda), B,
                                  static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

namespace {

void gemm_blocks(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                 const std::function<void(const GemmBlock&)>* prepare) {
  profile::GemmTimer timer;
  int64_t flops = M * N * K;
  int64_t along = std::max(M, N);
  if (flops < kSerialFlops || along < kMinSplit) {
    if (prepare) (*prepare)(GemmBlock{0, M, 0, N});
    gemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // The blocks depend only on the shape, so every element is computed by the same call
  // whatever the thread count.
  int64_t blocks = std::clamp<int64_t>(flops / kFlopsPerBlock, 2, kMaxBlocks);
  blocks = std::min(blocks, std::max<int64_t>(2, along / kMinBlockRows));
  blocks += blocks % 2;  // 3 blocks on 2 threads leave one idle for the last third
  int64_t size = (along + blocks - 1) / blocks;
  size = (size + 7) / 8 * 8;
  Chunks chunks(along, size);
  bool split_rows = M >= N;
  parallel_for(chunks.count, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      int64_t b = chunks.begin(c), n = chunks.end(c) - b;
      if (split_rows) {  // rows b.. of op(A) and C
        if (prepare) (*prepare)(GemmBlock{b, b + n, 0, N});
        const float* a = ta ? A + b : A + b * lda;
        gemm_serial(ta, tb, n, N, K, alpha, a, lda, B, ldb, beta, C + b * ldc, ldc);
      } else {  // columns b.. of op(B) and C
        if (prepare) (*prepare)(GemmBlock{0, M, b, b + n});
        const float* bb = tb ? B + b * ldb : B + b;
        gemm_serial(ta, tb, M, n, K, alpha, A, lda, bb, ldb, beta, C + b, ldc);
      }
    }
  });
}

}  // namespace

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_blocks(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nullptr);
}

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
          const std::function<void(const GemmBlock&)>& prepare) {
  gemm_blocks(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &prepare);
}

void gemm_batched(int64_t count, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, int64_t sa, const float* B, int64_t ldb,
                  int64_t sb, float beta, float* C, int64_t ldc, int64_t sc) {
  profile::GemmTimer timer;
  int64_t per = std::max<int64_t>(M * N * K, 1);
  if (count < 4 && per >= kFlopsPerBlock) {
    for (int64_t i = 0; i < count; ++i)
      gemm(ta, tb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta, C + i * sc, ldc);
    return;
  }
  parallel_for(count, grain_for(per, kFlopsPerBlock), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      gemm_serial(ta, tb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta, C + i * sc, ldc);
  });
}

}  // namespace na
