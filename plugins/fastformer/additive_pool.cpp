// Additive attention pooling: the fused causal custom function (forward and hand-written
// backward side by side), the bidirectional composite and the naive O(T^2) reference.
//
// Notation per (b, h), t indexes tokens:
//   a_t = scale * (w . x_t)          Z_t = sum_{s<=t} exp(a_s)        g_t = sum_{s<=t} exp(a_s) x_s / Z_t
//   lse_t = log Z_t (stored as m_t + log z_t, m_t the running max, z_t = Z_t exp(-m_t))
//   G_t = dL/dg_t (d)
//
// The weight of x_s in g_t is alpha_ts = exp(a_s - lse_t) (s <= t), so
//   dL/dx_s (through the pooled sum) = sum_{t>=s} alpha_ts G_t
//   dL/da_s                          = sum_{t>=s} alpha_ts (x_s - g_t) . G_t
// With w_s = exp(a_s - lse_s) (in (0, 1]) and the suffix sums
//   R_s = sum_{t>=s} exp(lse_s - lse_t) G_t       r_s = sum_{t>=s} exp(lse_s - lse_t) (g_t . G_t)
// (every factor exp(lse_s - lse_t) <= 1, since Z only grows: no overflow), built backwards by
//   R_s = G_s + exp(lse_s - lse_{s+1}) R_{s+1}    (the same for r)
// these are
//   dx_s += w_s R_s + da_s * scale * w           da_s = w_s (x_s . R_s - r_s)
//   dw   += sum over (b, s) of da_s * scale * x_s
// The forward saves a_t and lse_t (B, H, T); nothing of size T x T or T x d beyond the output.
#include "additive_pool.h"

#include <cmath>
#include <limits>

#include "nanoattn/parallel.h"

namespace na {

namespace {

// a . b over n floats: eight partial sums combined in a fixed order (vectorises without
// -ffast-math; the result depends only on the data).
inline float dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

void check_inputs(const char* op, const Var& x, const Var& w) {
  NA_CHECK(x.defined() && w.defined(), op, "x and w must be defined");
  NA_CHECK(x.rank() == 4 && w.rank() == 2 && w.dim(0) == x.dim(1) && w.dim(1) == x.dim(3), op,
           "x must be (B, H, T, d) and w (H, d); got x ", x.shape(), ", w ", w.shape());
}

// One token's score, the stable running update and g_t; returns lse_t, writes a_t. Never
// inlined: the fused forward and the RNN step run the very same machine code (no call site
// contracts a multiply-add differently), so stepping reproduces the parallel form bit for bit.
__attribute__((noinline)) float token(int64_t d, const float* __restrict x, const float* __restrict w, float scale,
                   float* __restrict s, float& z, float& m, float* __restrict g, float& a_out) {
  const float a = scale * dot(x, w, d);
  const float mn = std::max(m, a);
  const float c = std::exp(m - mn);  // 0 at the first token (m = -inf), 1 when the max holds
  const float e = std::exp(a - mn);
  z = z * c + e;
  const float inv_z = 1.0f / z;
  for (int64_t i = 0; i < d; ++i) {
    s[i] = s[i] * c + e * x[i];
    g[i] = s[i] * inv_z;
  }
  m = mn;
  a_out = a;
  return mn + std::log(z);
}

// a = scale * (w_h . x_t) as a composite: (B, H, 1, T).
Var scale_scores(const Var& x, const Var& w, float scale, int64_t B, int64_t H, int64_t T, int64_t d) {
  Var a = sum(mul(x, reshape(w, {H, 1, d})), -1);  // (B, H, T)
  return reshape(na::scale(a, scale), {B, H, 1, T});
}

}  // namespace

float additive_pool_token(int64_t d, const float* x_t, const float* w, float scale, float* s,
                          float& z, float& m, float* g) {
  float a;
  return token(d, x_t, w, scale, s, z, m, g, a);
}

Var causal_additive_pool(const Var& x, const Var& w, float scale) {
  check_inputs("causal_additive_pool", x, w);
  const int64_t B = x.dim(0), H = x.dim(1), T = x.dim(2), d = x.dim(3), BH = B * H;
  Var out = tape().output(x.shape(), {x, w});
  const bool save = out.requires_grad();
  // Scratch and saved values come from the tape before the parallel loop.
  float* s_all = tape().scratch<float>(BH * d);
  float* a_all = save ? tape().alloc({BH, T}).data() : nullptr;
  float* lse_all = save ? tape().alloc({BH, T}).data() : nullptr;
  const float* xv = x.value().data();
  const float* wv = w.value().data();
  float* g = out.value().data();
  parallel_for(BH, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      float* s = s_all + n * d;
      std::fill(s, s + d, 0.0f);
      float z = 0.0f, m = -std::numeric_limits<float>::infinity(), a;
      const float* wh = wv + (n % H) * d;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t row = n * T + t;
        const float lse = token(d, xv + row * d, wh, scale, s, z, m, g + row * d, a);
        if (save) {
          a_all[row] = a;
          lse_all[row] = lse;
        }
      }
    }
  });

  record_backward(out, [=] {
    float* dx = x.requires_grad() ? x.grad_acc().data() : nullptr;
    float* dw = w.requires_grad() ? w.grad_acc().data() : nullptr;
    if (!dx && !dw) return;
    const float* G = out.grad().data();
    const float* gv = out.value().data();
    const float* xv = x.value().data();
    const float* wv = w.value().data();
    float* R_all = tape().scratch<float>(BH * d);
    float* dw_part = dw ? tape().scratch<float>(BH * d) : nullptr;  // per task, summed below
    parallel_for(BH, 1, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        float* R = R_all + n * d;
        std::fill(R, R + d, 0.0f);
        float* dwn = dw_part ? dw_part + n * d : nullptr;
        if (dwn) std::fill(dwn, dwn + d, 0.0f);
        const float* wh = wv + (n % H) * d;
        float r = 0.0f;
        for (int64_t t = T - 1; t >= 0; --t) {
          const int64_t row = n * T + t;
          const float* Gt = G + row * d;
          const float* xt = xv + row * d;
          if (t < T - 1) {  // R_t = G_t + exp(lse_t - lse_{t+1}) R_{t+1}
            const float rho = std::exp(lse_all[row] - lse_all[row + 1]);
            for (int64_t i = 0; i < d; ++i) R[i] = R[i] * rho + Gt[i];
            r = r * rho + dot(gv + row * d, Gt, d);
          } else {
            for (int64_t i = 0; i < d; ++i) R[i] = Gt[i];
            r = dot(gv + row * d, Gt, d);
          }
          const float wt = std::exp(a_all[row] - lse_all[row]);
          const float da = wt * (dot(xt, R, d) - r);
          if (dx) {
            float* dxt = dx + row * d;
            const float dsc = da * scale;
            for (int64_t i = 0; i < d; ++i) dxt[i] += wt * R[i] + dsc * wh[i];
          }
          if (dwn) {
            const float dsc = da * scale;
            for (int64_t i = 0; i < d; ++i) dwn[i] += dsc * xt[i];
          }
        }
      }
    });
    if (dw)  // combine the per-(b, h) partials in a fixed order: b ascending, per head
      for (int64_t n = 0; n < BH; ++n) {
        float* dwh = dw + (n % H) * d;
        for (int64_t i = 0; i < d; ++i) dwh[i] += dw_part[n * d + i];
      }
  });
  return out;
}

Var bidirectional_additive_pool(const Var& x, const Var& w, float scale) {
  check_inputs("bidirectional_additive_pool", x, w);
  const int64_t B = x.dim(0), H = x.dim(1), T = x.dim(2), d = x.dim(3);
  Var a = scale_scores(x, w, scale, B, H, T, d);
  return matmul(softmax(a), x);  // (B, H, 1, T) x (B, H, T, d) -> (B, H, 1, d)
}

Var additive_pool_reference(const Var& x, const Var& w, float scale, bool causal) {
  check_inputs("additive_pool_reference", x, w);
  const int64_t B = x.dim(0), H = x.dim(1), T = x.dim(2), d = x.dim(3);
  Var a = scale_scores(x, w, scale, B, H, T, d);  // (B, H, 1, T)
  Tensor zeros = tape().zeros({T, T});
  Var rows = add(a, tape().leaf(zeros));  // (B, H, T, T): every row is the score row
  return matmul(softmax(rows, causal), x);
}

}  // namespace na
