// softmax and log_softmax along the last axis, optionally causal. One row kernel serves both:
// they differ only in the last step of the forward and in how the backward reads the output.
#include <algorithm>
#include <cmath>
#include <limits>

#include "nanoattn/ops.h"
#include "op_util.h"

namespace na {

namespace {

// Rough cost of one element (an exp plus a few flops) for sizing parallel chunks.
constexpr int64_t kExpCost = 8;

// The rows of x: (..., T, S) as N rows of S; with causal, row r sees its first t + 1 columns,
// t = r mod T.
struct Rows {
  int64_t n = 0, S = 0, T = 1;
  bool causal = false;
  Rows(const char* op, const Shape& s, bool causal_) : causal(causal_) {
    NA_CHECK(s.rank() >= 1, op, "needs at least 1 dim, got ", s);
    NA_CHECK(!causal || s.rank() >= 2, op, "causal needs x: (..., T, S), got ", s);
    S = s[-1];
    T = s.rank() >= 2 ? s[-2] : 1;
    n = S ? s.numel() / S : 0;
  }
  int64_t visible(int64_t r) const { return causal ? std::min(S, r % T + 1) : S; }
};

// One row: x, y: (S,), of which the first n columns are visible (n >= 1). Subtracts the row
// max so exp never overflows; masked columns get exactly 0 (softmax) or -inf (log_softmax).
template <bool Log>
void forward_row(const float* x, float* y, int64_t n, int64_t S) {
  float m = x[0];
  for (int64_t j = 1; j < n; ++j) m = std::max(m, x[j]);
  float s = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    float d = x[j] - m, e = std::exp(d);
    s += e;
    y[j] = Log ? d : e;
  }
  if constexpr (Log) {
    float ls = std::log(s);
    for (int64_t j = 0; j < n; ++j) y[j] -= ls;
    std::fill(y + n, y + S, -std::numeric_limits<float>::infinity());
  } else {
    float inv = 1.0f / s;
    for (int64_t j = 0; j < n; ++j) y[j] *= inv;
    std::fill(y + n, y + S, 0.0f);
  }
}

// One row of the backward from the output y alone (no saved statistics needed):
//   softmax:      dx += y * (g - sum(g * y))
//   log_softmax:  dx += g - exp(y) * sum(g)
// Masked columns are constants of the forward: they neither receive nor pass on a gradient.
template <bool Log>
void backward_row(const float* y, const float* g, float* dx, int64_t n) {
  float s = 0.0f;
  for (int64_t j = 0; j < n; ++j) s += Log ? g[j] : g[j] * y[j];
  for (int64_t j = 0; j < n; ++j) dx[j] += Log ? g[j] - std::exp(y[j]) * s : y[j] * (g[j] - s);
}

// x: (..., T, S) -> (..., T, S)
template <bool Log>
Var softmax_impl(const char* op, const Var& x, bool causal) {
  NA_PROFILE_OP(op);
  detail::check_defined(op, x, "x");
  Rows rows(op, x.shape(), causal);
  Var out = tape().output(x.shape(), {x});
  int64_t grain = grain_for(kExpCost * rows.S);
  const float* xp = x.value().data();
  float* yp = out.value().data();
  parallel_for(rows.n, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      forward_row<Log>(xp + r * rows.S, yp + r * rows.S, rows.visible(r), rows.S);
  });
  record_backward(out, [=] {
    if (!x.requires_grad()) return;
    const float* y = out.value().data();
    const float* g = out.grad().data();
    float* dx = x.grad_acc().data();
    parallel_for(rows.n, grain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        int64_t o = r * rows.S;
        backward_row<Log>(y + o, g + o, dx + o, rows.visible(r));
      }
    });
  });
  return out;
}

}  // namespace

Var softmax(const Var& x, bool causal) { return softmax_impl<false>("softmax", x, causal); }
Var log_softmax(const Var& x, bool causal) { return softmax_impl<true>("log_softmax", x, causal); }

}  // namespace na
