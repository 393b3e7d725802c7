#include "chunked_ffn.h"

#include <algorithm>
#include <cmath>

#include "nanoattn/blas.h"
#include "nanoattn/parallel.h"
#include "nanoattn/vmath.h"

namespace na {

namespace {

constexpr int64_t kElemGrain = 1 << 14;  // elementwise loops: floats per task, as in ops/

// N rows in n contiguous chunks whose sizes differ by at most one.
struct RowChunks {
  int64_t N, n;
  int64_t begin(int64_t i) const { return i * N / n; }
  int64_t end(int64_t i) const { return (i + 1) * N / n; }
  int64_t max_rows() const { return (N + n - 1) / n; }
};

// p (m, H) = x (m, C) w1^T + b1: bias first, then the product added, as linear() does.
void pre_activation(const float* x, int64_t m, int64_t C, int64_t H, const float* w1, const float* b1,
                    float* p) {
  parallel_for(m, grain_for(H, kElemGrain), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::copy(b1, b1 + H, p + r * H);
  });
  gemm(false, true, m, H, C, 1.0f, x, C, w1, C, 1.0f, p, H);
}

// y (m, C) = a (m, H) w2^T + b2
void output_rows(const float* a, int64_t m, int64_t C, int64_t H, const float* w2, const float* b2, float* y) {
  parallel_for(m, grain_for(C, kElemGrain), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::copy(b2, b2 + C, y + r * C);
  });
  gemm(false, true, m, C, H, 1.0f, a, H, w2, H, 1.0f, y, C);
}

// Applies f to n floats in place.
template <class F>
void map_inplace(float* v, int64_t n, F f) {
  parallel_for(n, kElemGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) v[i] = f(i, v[i]);
  });
}

// db[c] += sum over rows of g[r, c], rows in order (linear()'s order: the bias gradients equal
// the composite's bit for bit).
void add_column_sums(const float* g, int64_t m, int64_t n, float* db) {
  parallel_for(n, 64, [&](int64_t c0, int64_t c1) {
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = c0; c < c1; ++c) db[c] += g[r * n + c];
  });
}

}  // namespace

Var chunked_ffn(const Var& x, const Var& w1, const Var& b1, const Var& w2, const Var& b2, int64_t chunks) {
  for (const Var* v : {&x, &w1, &b1, &w2, &b2})
    NA_CHECK(v->defined(), "chunked_ffn", "an input is undefined");
  const Shape& xs = x.shape();
  NA_CHECK(xs.rank() >= 1 && w1.rank() == 2, "chunked_ffn", "x ", xs, " must be (..., C) and w1 ", w1.shape(),
           " (H, C)");
  const int64_t C = xs[-1], H = w1.dim(0);
  const bool fits = C > 0 && w1.shape() == Shape{H, C} && b1.shape() == Shape{H} && w2.shape() == Shape{C, H} &&
                    b2.shape() == Shape{C};
  NA_CHECK(fits, "chunked_ffn", "shapes do not fit: x ", xs, ", w1 ", w1.shape(), " (want (H, C)), b1 ", b1.shape(),
           " (H,), w2 ", w2.shape(), " (C, H), b2 ", b2.shape(), " (C,)");
  NA_CHECK(chunks >= 1, "chunked_ffn", "chunks must be >= 1, got ", chunks);
  const int64_t N = xs.numel() / C;
  const RowChunks rc{N, std::max<int64_t>(1, std::min(chunks, N))};

  Var out = tape().output(xs, {x, w1, b1, w2, b2});
  // One chunk's hidden layer; the backward reuses it (it lives until the tape's reset).
  const Tensor h = tape().alloc({rc.max_rows(), H});
  for (int64_t i = 0; i < rc.n; ++i) {
    const int64_t r0 = rc.begin(i), m = rc.end(i) - r0;
    pre_activation(x.value().data() + r0 * C, m, C, H, w1.value().data(), b1.value().data(), h.data());
    map_inplace(h.data(), m * H, [](int64_t, float v) { return gelu_value(v); });
    output_rows(h.data(), m, C, H, w2.value().data(), b2.value().data(), out.value().data() + r0 * C);
  }

  record_backward(out, [=] {
    const bool gx = x.requires_grad(), gw1 = w1.requires_grad(), gb1 = b1.requires_grad();
    const bool gw2 = w2.requires_grad(), gb2 = b2.requires_grad();
    const bool need_dp = gx || gw1 || gb1;  // the gradient of the pre-activation is wanted
    const float* G = out.grad().data();
    const float *X = x.value().data(), *W1 = w1.value().data(), *B1 = b1.value().data(), *W2 = w2.value().data();
    // grad_acc, not grad_sink: a weight gradient is a sum over chunks, each added with beta 1.
    float* dw1 = gw1 ? w1.grad_acc().data() : nullptr;
    float* db1 = gb1 ? b1.grad_acc().data() : nullptr;
    float* dw2 = gw2 ? w2.grad_acc().data() : nullptr;
    float* db2 = gb2 ? b2.grad_acc().data() : nullptr;
    float beta_x = 0.0f;
    float* dx = gx ? x.grad_sink(beta_x).data() : nullptr;  // chunks write disjoint rows
    float* p = h.data();                                   // pre-activation, recomputed
    float* d = need_dp || gw2 ? tape().alloc({rc.max_rows(), H}).data() : nullptr;

    for (int64_t i = 0; i < rc.n; ++i) {
      const int64_t r0 = rc.begin(i), m = rc.end(i) - r0;
      const float *xc = X + r0 * C, *gc = G + r0 * C;
      if (gb2) add_column_sums(gc, m, C, db2);
      if (!need_dp && !gw2) continue;
      pre_activation(xc, m, C, H, W1, B1, p);
      if (gw2) {  // dW2 += dY^T gelu(P)
        map_inplace(d, m * H, [p](int64_t j, float) { return gelu_value(p[j]); });
        gemm(true, false, C, H, m, 1.0f, gc, C, d, H, 1.0f, dw2, H);
      }
      if (!need_dp) continue;
      gemm(false, false, m, H, C, 1.0f, gc, C, W2, H, 0.0f, d, H);                // dA = dY W2
      map_inplace(d, m * H, [p](int64_t j, float da) { return da * gelu_slope(p[j]); });  // dP
      if (gw1) gemm(true, false, H, C, m, 1.0f, d, H, xc, C, 1.0f, dw1, C);       // dW1 += dP^T x
      if (gb1) add_column_sums(d, m, H, db1);
      if (gx) gemm(false, false, m, C, H, 1.0f, d, H, W1, C, beta_x, dx + r0 * C, C);  // dx = dP W1
    }
  });
  return out;
}

}  // namespace na
