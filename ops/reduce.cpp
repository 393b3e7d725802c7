// Reductions: sum, mean, max along one axis; sum_all, mean_all over everything.
//
// x is viewed as (outer, n, inner) around the reduced axis, and out[o, j] reduces x[o, :, j].
// Every output element is reduced by one task in index order, and a reduction to one element
// uses fixed chunks combined in index order: results are bitwise identical for any thread count.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "nanoattn/ops.h"
#include "op_util.h"

namespace na {

namespace {

// Output columns one task reduces together. Their accumulators are a fixed-size array the
// compiler keeps in registers, and when inner > 1 the loop over them reads contiguous memory.
constexpr int64_t kCols = 64;
using FullBlock = std::integral_constant<int64_t, kCols>;
using OneColumn = std::integral_constant<int64_t, 1>;

struct AxisView {
  int64_t outer, n, inner;
  Shape out_shape;  // x's shape without the axis (or with extent 1 there if keepdim)
};

// s: (..., n, ...) with n at `axis` (negative counts from the end).
AxisView view_axis(const char* op, const Shape& s, int axis, bool keepdim) {
  NA_CHECK(axis >= -s.rank() && axis < s.rank(), op, "axis ", axis,
           " is out of range for shape ", s);
  int a = s.axis(axis);
  AxisView v{s.prod(0, a), s[a], s.prod(a + 1, s.rank()), Shape()};
  for (int i = 0; i < s.rank(); ++i)
    if (i != a || keepdim) v.out_shape.push_back(i == a ? 1 : s[i]);
  return v;
}

// Calls body(o, j0, width) in parallel for every output row o and column block [j0, j0 + W):
// full blocks of W = kCols columns, then the leftover columns one at a time (W = 1). `width`
// is a std::integral_constant, so W is a compile-time constant inside the body.
template <class Body>
void for_each_block(const AxisView& v, const Body& body) {
  int64_t full = v.inner / kCols, pieces = full + v.inner % kCols;
  parallel_for(v.outer * pieces, grain_for(v.n * std::min(v.inner, kCols)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t o = t / pieces, p = t % pieces;
      if (p < full) body(o, p * kCols, FullBlock());
      else body(o, full * kCols + (p - full), OneColumn());
    }
  });
}

// x: (N,) -> sum in double over fixed chunks, combined in index order.
double chunked_sum(const float* x, int64_t n) {
  Chunks chunks(n, detail::kElemGrain);
  double* partial = tape().scratch<double>(chunks.count);
  parallel_for(chunks.count, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double s = 0;
      for (int64_t i = chunks.begin(c); i < chunks.end(c); ++i) s += x[i];
      partial[c] = s;
    }
  });
  double total = 0;
  for (int64_t c = 0; c < chunks.count; ++c) total += partial[c];
  return total;
}

// x: (outer, n, inner) -> out_shape: out[o, j] = scale * sum_k x[o, k, j], summed in double.
// scale is 1 (sum) or 1/n (mean). Backward: dx[o, k, j] += scale * g[o, j].
Var scaled_sum(const Var& x, const AxisView& v, double scale) {
  Var out = tape().output(v.out_shape, {x});
  const float* xp = x.value().data();
  float* y = out.value().data();
  if (v.outer * v.inner == 1) {  // one output: split the n inputs over tasks instead
    y[0] = static_cast<float>(chunked_sum(xp, v.n) * scale);
  } else {
    for_each_block(v, [&](int64_t o, int64_t j0, auto width) {
      constexpr int64_t W = decltype(width)::value;
      const float* xo = xp + o * v.n * v.inner + j0;
      double acc[W] = {};
      for (int64_t k = 0; k < v.n; ++k)
        for (int64_t j = 0; j < W; ++j) acc[j] += xo[k * v.inner + j];
      for (int64_t j = 0; j < W; ++j) y[o * v.inner + j0 + j] = static_cast<float>(acc[j] * scale);
    });
  }
  record_backward(out, [=] {
    if (!x.requires_grad()) return;
    const float* g = out.grad().data();
    float* d = x.grad_acc().data();
    float s = static_cast<float>(scale);
    // Row r = o * n + k of x's (outer * n, inner) view reads gradient row o.
    parallel_for(v.outer * v.n, grain_for(v.inner, detail::kElemGrain), [&](int64_t r0, int64_t r1) {
      int64_t o = r0 / v.n, k = r0 % v.n;  // walked along, not divided per row
      for (int64_t r = r0; r < r1; ++r) {
        const float* gr = g + o * v.inner;
        float* dr = d + r * v.inner;
        for (int64_t j = 0; j < v.inner; ++j) dr[j] += s * gr[j];
        if (++k == v.n) k = 0, ++o;
      }
    });
  });
  return out;
}

Var sum_along(const char* op, const Var& x, int axis, bool keepdim, bool mean) {
  NA_PROFILE_OP(op);
  detail::check_defined(op, x, "x");
  AxisView v = view_axis(op, x.shape(), axis, keepdim);
  return scaled_sum(x, v, mean ? 1.0 / static_cast<double>(v.n) : 1.0);  // mean of 0: NaN
}

Var sum_everything(const char* op, const Var& x, bool mean) {
  NA_PROFILE_OP(op);
  detail::check_defined(op, x, "x");
  int64_t n = x.numel();
  return scaled_sum(x, AxisView{1, n, 1, Shape{1}}, mean ? 1.0 / static_cast<double>(n) : 1.0);
}

// True if v replaces the running maximum: strictly greater keeps the FIRST maximum; a NaN
// beats any number so it propagates (as in PyTorch), and the first NaN stays.
inline bool beats(float v, float best) { return v > best || (v != v && best == best); }

}  // namespace

Var sum(const Var& x, int axis, bool keepdim) { return sum_along("sum", x, axis, keepdim, false); }
Var mean(const Var& x, int axis, bool keepdim) { return sum_along("mean", x, axis, keepdim, true); }
Var sum_all(const Var& x) { return sum_everything("sum_all", x, false); }
Var mean_all(const Var& x) { return sum_everything("mean_all", x, true); }

// x: (outer, n, inner) -> out_shape; out[o, j] = x[o, k*, j] with k* the first argmax.
// Backward: dx[o, k*, j] += g[o, j] (each output owns one distinct input element).
Var max(const Var& x, int axis, bool keepdim) {
  NA_PROFILE_OP("max");
  detail::check_defined("max", x, "x");
  AxisView v = view_axis("max", x.shape(), axis, keepdim);
  NA_CHECK(v.n > 0, "max", "axis ", axis, " of shape ", x.shape(),
           " is empty: a max over 0 elements is undefined");
  Var out = tape().output(v.out_shape, {x});
  int64_t* arg = tape().scratch<int64_t>(v.outer * v.inner);  // k* per output, for backward
  const float* xp = x.value().data();
  float* y = out.value().data();
  for_each_block(v, [&](int64_t o, int64_t j0, auto width) {
    constexpr int64_t W = decltype(width)::value;
    const float* xo = xp + o * v.n * v.inner + j0;
    float best[W];
    int64_t at[W] = {};
    for (int64_t j = 0; j < W; ++j) best[j] = xo[j];
    for (int64_t k = 1; k < v.n; ++k)
      for (int64_t j = 0; j < W; ++j) {
        float c = xo[k * v.inner + j];
        if (beats(c, best[j])) best[j] = c, at[j] = k;
      }
    for (int64_t j = 0; j < W; ++j) y[o * v.inner + j0 + j] = best[j], arg[o * v.inner + j0 + j] = at[j];
  });
  record_backward(out, [=] {
    if (!x.requires_grad()) return;
    const float* g = out.grad().data();
    float* d = x.grad_acc().data();
    parallel_for(v.outer * v.inner, detail::kElemGrain, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {  // t = o * inner + j
        int64_t o = t / v.inner, j = t % v.inner;
        d[(o * v.n + arg[t]) * v.inner + j] += g[t];
      }
    });
  });
  return out;
}

}  // namespace na
