// Thin row-major sgemm wrapper. OpenBLAS is pinned to one thread; large products are cut into
// fixed blocks of rows (or columns) that TBB runs in parallel, each block one sgemm call.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace na {

// C = alpha * op(A) * op(B) + beta * C, row-major; op(A) is (M, K), op(B) is (K, N), C is (M, N).
// lda/ldb/ldc are row strides of A, B, C as stored. beta = 0 ignores C's contents.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
          int64_t ldc);

// A C block (rows [r0, r1), columns [c0, c1)) that gemm is about to compute.
struct GemmBlock {
  int64_t r0, r1, c0, c1;
};
// gemm that first calls prepare(block) for each block of C, on the thread that then computes
// the block with the same beta: e.g. it fills the block with a bias (beta = 1) while the block
// is in that core's cache, rather than in a separate pass over all of C. Blocks are disjoint.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
          int64_t ldc, const std::function<void(const GemmBlock&)>& prepare);

// `count` independent products with fixed strides between matrices (batch x heads).
void gemm_batched(int64_t count, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                  int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                  int64_t stride_c);

// One sgemm on the calling thread, no splitting (for kernels that already run in a task).
void gemm_serial(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc);

// Pins OpenBLAS to one thread (done automatically when libnanoattn loads). The benchmark
// uses set_blas_threads to measure plain multi-threaded sgemm as a baseline.
void set_blas_threads(int n);

// Plain sgemm throughput of this process right now (GFLOP/s), through the same TBB-split
// wrapper the ops use, on a shape like a feed-forward layer's (rows = B x T; the median of 7
// calls): the denominator of model FLOP utilisation (`bench train`, the training metrics).
double sgemm_gflops(int64_t rows);

// The kernels OpenBLAS runs ("SkylakeX", "Haswell", "Prescott", ...); why: blas_kernels.h.
std::string blas_kernels();

}  // namespace na
