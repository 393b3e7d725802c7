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

inline void check_same_shape(const char* op, const Shape& a, const Shape& b) {
  NA_CHECK(a == b, op, "shapes ", a, " and ", b, " must be equal");
}

inline void check_defined(const char* op, const Var& v, const char* what) {
  NA_CHECK(v.defined(), op, "input '", what, "' is undefined");
}

}  // namespace na::detail
