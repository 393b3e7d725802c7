// cumsum: inclusive prefix sum along an axis. Backward is the reverse (suffix) sum of the
// gradient, so forward and backward share one kernel.
#include <algorithm>

#include "nanoattn/ops.h"
#include "op_util.h"

namespace na {

namespace {

// Columns one task scans together: full blocks of kCols, whose running sums are a fixed-size
// array the compiler keeps in registers, then the leftover columns one at a time.
constexpr int64_t kCols = 64;

// Steps ahead at which a column block prefetches its destination rows (see below).
constexpr int64_t kPrefetchSteps = 4;

// Scans W columns that start at src / dst, with consecutive steps `stride` floats apart.
template <int64_t W>
void scan_columns(const float* src, float* dst, int64_t n, int64_t stride, bool reverse,
                  bool accumulate) {
  double run[W] = {};  // double: long sequences lose no precision
  for (int64_t step = 0; step < n; ++step) {
    int64_t at = (reverse ? n - 1 - step : step) * stride;
    // Plain stores to strided rows stall on fetching their cache lines (the hardware prefetcher
    // does not help stores); prefetching them for writing makes the forward 4x faster.
    if (W > 1 && step + kPrefetchSteps < n) {
      int64_t ahead = at + (reverse ? -kPrefetchSteps : kPrefetchSteps) * stride;
      for (int64_t j = 0; j < W; j += 16) __builtin_prefetch(dst + ahead + j, 1);  // 64-byte lines
    }
    for (int64_t j = 0; j < W; ++j) {
      run[j] += src[at + j];
      float v = static_cast<float>(run[j]);
      dst[at + j] = accumulate ? dst[at + j] + v : v;
    }
  }
}

// src, dst: (outer, n, inner), scanned along n.
// dst[o, k, j] (+)= sum of src[o, k', j] over k' <= k, or over k' >= k when `reverse`.
// Each task owns whole columns and walks them in order, so no task depends on another and
// results are identical for any thread count.
void scan(const float* src, float* dst, int64_t outer, int64_t n, int64_t inner, bool reverse,
          bool accumulate) {
  int64_t full = inner / kCols, pieces = full + inner % kCols;
  parallel_for(outer * pieces, grain_for(n * std::min(inner, kCols)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t o = t / pieces, p = t % pieces;
      int64_t at = o * n * inner + (p < full ? p * kCols : full * kCols + (p - full));
      if (p < full) scan_columns<kCols>(src + at, dst + at, n, inner, reverse, accumulate);
      else scan_columns<1>(src + at, dst + at, n, inner, reverse, accumulate);
    }
  });
}

}  // namespace

// x: (..., n, ...) with n at `axis` -> same shape.
Var cumsum(const Var& x, int axis) {
  NA_PROFILE_OP("cumsum");
  detail::check_defined("cumsum", x, "x");
  const Shape& s = x.shape();
  NA_CHECK(axis >= -s.rank() && axis < s.rank(), "cumsum", "axis ", axis,
           " is out of range for shape ", s);
  int a = s.axis(axis);
  int64_t outer = s.prod(0, a), n = s[a], inner = s.prod(a + 1, s.rank());
  Var out = tape().output(s, {x});
  scan(x.value().data(), out.value().data(), outer, n, inner, false, false);
  record_backward(out, [=] {
    if (x.requires_grad())
      scan(out.grad().data(), x.grad_acc().data(), outer, n, inner, true, true);
  });
  return out;
}

}  // namespace na
