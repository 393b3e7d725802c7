// Helpers shared by the op files (not installed).
#pragma once
#include <cstring>

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

// db[c] += sum over rows r of g[r, c] (g is (rows, n)), rows summed in order: the bias
// gradient of linear layers, the same bits on any thread count.
inline void add_column_sums(const float* g, int64_t rows, int64_t n, float* db) {
  parallel_for(n, 64, [&](int64_t c0, int64_t c1) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = c0; c < c1; ++c) db[c] += g[r * n + c];
  });
}

inline void check_same_shape(const char* op, const Shape& a, const Shape& b) {
  NA_CHECK(a == b, op, "shapes ", a, " and ", b, " must be equal");
}

inline void check_defined(const char* op, const Var& v, const char* what) {
  NA_CHECK(v.defined(), op, "input '", what, "' is undefined");
}

}  // namespace na::detail
