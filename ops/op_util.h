// Helpers shared by the op files (not installed).
#pragma once
#include <algorithm>
#include <cstring>

#include "nanoattn/blas.h"
#include "nanoattn/error.h"
#include "nanoattn/parallel.h"
#include "nanoattn/profile.h"
#include "nanoattn/tape.h"

namespace na::detail {

// Elementwise loops: chunks of this many floats per task.
constexpr int64_t kElemGrain = 1 << 14;

// dst += src (same numel).
inline void add_into(const Tensor& dst, const Tensor& src) {
  float* d = dst.data();
  const float* s = src.data();
  parallel_for(dst.numel(), kElemGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) d[i] += s[i];
  });
}

// Accumulates g into v's gradient, if v wants one.
inline void accumulate(const Var& v, const Tensor& g) {
  if (!v.requires_grad()) return;
  float beta;
  const Tensor& dst = v.grad_sink(beta);
  if (beta == 0.0f) std::memcpy(dst.data(), g.data(), g.numel() * sizeof(float));
  else add_into(dst, g);
}

// The sum of f(i) over i < n in 16 interleaved partial sums, added up in a fixed order: the
// compiler vectorises it without -ffast-math (a single running sum is one long dependency
// chain), and the result depends only on the data.
template <class F>
inline float lane_sum(int64_t n, F&& f) {
  constexpr int kLanes = 16;
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += f(i + l);
  for (int l = 0; i < n; ++i, ++l) acc[l] += f(i);
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int l = 0; l < width; ++l) acc[l] += acc[l + width];
  return acc[0];
}

// y = x w^T + bias (bias may be null) for x (rows, in), w (out, in), y (rows, out). The bias
// fills each block of y just before gemm adds that block's product, while it is in cache.
inline void linear_forward(const float* x, const float* w, const float* bias, int64_t rows,
                           int64_t in, int64_t out, float* y) {
  if (!bias) {
    gemm(false, true, rows, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    return;
  }
  gemm(false, true, rows, out, in, 1.0f, x, in, w, in, 1.0f, y, out, [&](const GemmBlock& b) {
    for (int64_t r = b.r0; r < b.r1; ++r) std::copy(bias + b.c0, bias + b.c1, y + r * out + b.c0);
  });
}

// db[c] += sum over rows r of g[r, c] for columns c in [c0, c1) of g (rows, n), rows summed in
// order: the bias gradient of linear layers, the same bits on any thread count.
inline void add_column_sums(const float* g, int64_t rows, int64_t n, int64_t c0, int64_t c1,
                            float* db) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = c0; c < c1; ++c) db[c] += g[r * n + c];
}

inline void add_column_sums(const float* g, int64_t rows, int64_t n, float* db) {
  parallel_for(n, 64, [&](int64_t c0, int64_t c1) { add_column_sums(g, rows, n, c0, c1, db); });
}

// A linear layer's parameter gradients from G = dY (rows, out) and its input x (rows, in):
// dw (out, in) = beta_w dw + G^T x and db (out) += column sums of G; either may be null. The
// sums of a block of dw's rows are taken by the task that computes the block (gemm's prepare),
// reading G's columns just before the block's product packs them. Each column is summed by
// exactly one block (the one at column 0 of dw), so the bits match add_column_sums.
inline void linear_param_grads(const float* G, const float* x, int64_t rows, int64_t in,
                               int64_t out, float beta_w, float* dw, float* db) {
  if (!dw) {
    if (db) add_column_sums(G, rows, out, db);
    return;
  }
  if (!db) {
    gemm(true, false, out, in, rows, 1.0f, G, out, x, in, beta_w, dw, in);
    return;
  }
  gemm(true, false, out, in, rows, 1.0f, G, out, x, in, beta_w, dw, in, [&](const GemmBlock& b) {
    if (b.c0 == 0) add_column_sums(G, rows, out, b.r0, b.r1, db);
  });
}

inline void check_same_shape(const char* op, const Shape& a, const Shape& b) {
  NA_CHECK(a == b, op, "shapes ", a, " and ", b, " must be equal");
}

inline void check_defined(const char* op, const Var& v, const char* what) {
  NA_CHECK(v.defined(), op, "input '", what, "' is undefined");
}

}  // namespace na::detail
