// The delta rule: fused forward and hand-written backward through time, the RNN step and the
// naive reference.
//
// Per (b, h), S is kept as Dv rows of F floats (row j maps a key to output component j).
// Forward, token t (k = phi_k_t, q = phi_q_t):
//   u_t = v_t - S_{t-1} k          delta_t = beta_t u_t
//   S_t = S_{t-1} + delta_t k^T    y_t = S_t q
//
// Backward. Let D_t = dL/dS_t (everything that S_t influences: y_t and all later steps) and
// gy_t = dL/dy_t. Going from t = T down to 1, with D_T starting at 0:
//   D_t     += gy_t q^T                          (y_t = S_t q)
//   dq_t     = S_t^T gy_t
//   ddelta_t = D_t k                             (S_t = S_{t-1} + delta_t k^T)
//   dk_t     = D_t^T delta_t + S_{t-1}^T dvbar_t,    dvbar_t = -beta_t ddelta_t
//   dv_t     = beta_t ddelta_t
//   dbeta_t  = ddelta_t . u_t
//   D_{t-1}  = D_t + dvbar_t k^T                 (identity path + vbar_t = S_{t-1} k)
// Each step needs S_t and S_{t-1}. The forward saves S at the start of every chunk of C steps;
// the backward walks the chunks in reverse, recomputes the chunk's C + 1 states from its
// checkpoint (the same code as the forward, so the same bits) together with u_t, and runs the
// recurrence above over them. Rows j are independent except for dq_t and dk_t, which sum over
// j in increasing order: the result depends only on the data.
#include "delta_rule.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "nanoattn/parallel.h"

namespace na {

namespace {

// a . b over n floats: eight partial sums combined in a fixed order.
inline float dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

// s += c * k, then returns s . q (the updated s), in one pass with dot's summation order.
inline float update_dot(float* __restrict s, float c, const float* __restrict k,
                        const float* __restrict q, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) {
      s[i + l] += c * k[i + l];
      acc[l] += s[i + l] * q[i + l];
    }
  float tail = 0.0f;
  for (; i < n; ++i) {
    s[i] += c * k[i];
    tail += s[i] * q[i];
  }
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

inline int64_t padded(int64_t n) { return (n + 15) / 16 * 16; }

// One token of one (b, h): S (Dv x F) advances from S_{t-1} to S_t, y = S_t q, and u (if not
// null) gets v - S_{t-1} k. Never inlined: the forward, the backward's recomputation and the
// RNN step run the same machine code, so they produce the same bits.
__attribute__((noinline)) void token(int64_t F, int64_t Dv, const float* __restrict q,
                                     const float* __restrict k, const float* __restrict v,
                                     float beta, float* __restrict S, float* __restrict y,
                                     float* __restrict u_out) {
  for (int64_t j = 0; j < Dv; ++j) {
    float* __restrict Sj = S + j * F;
    const float u = v[j] - dot(Sj, k, F);
    const float dd = beta * u;
    if (u_out) u_out[j] = u;
    y[j] = update_dot(Sj, dd, k, q, F);
  }
}

void check_inputs(const char* op, const Var& phi_q, const Var& phi_k, const Var& v, const Var& beta) {
  NA_CHECK(phi_q.defined() && phi_k.defined() && v.defined() && beta.defined(), op,
           "phi_q, phi_k, v and beta must all be defined");
  const bool ok = phi_q.rank() == 4 && phi_k.shape() == phi_q.shape() && v.rank() == 4 &&
                  beta.rank() == 3 && v.dim(0) == phi_q.dim(0) && v.dim(1) == phi_q.dim(1) &&
                  v.dim(2) == phi_q.dim(2) && beta.dim(0) == phi_q.dim(0) &&
                  beta.dim(1) == phi_q.dim(1) && beta.dim(2) == phi_q.dim(2);
  NA_CHECK(ok, op, "need phi_q, phi_k (B, H, T, F), v (B, H, T, Dv) and beta (B, H, T); got phi_q ",
           phi_q.shape(), ", phi_k ", phi_k.shape(), ", v ", v.shape(), ", beta ", beta.shape());
}

}  // namespace

int64_t delta_rule_checkpoint_interval(int64_t T, int64_t checkpoint_every) {
  if (checkpoint_every > 0) return std::min(checkpoint_every, std::max<int64_t>(T, 1));
  int64_t c = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(std::max<int64_t>(T, 1)))));
  return std::max<int64_t>(c, 1);
}

Var delta_rule(const Var& phi_q, const Var& phi_k, const Var& v, const Var& beta, int64_t checkpoint_every) {
  check_inputs("delta_rule", phi_q, phi_k, v, beta);
  NA_CHECK(checkpoint_every >= 0, "delta_rule", "checkpoint_every must be >= 0 (0 = auto), got ",
           checkpoint_every);
  const int64_t B = phi_q.dim(0), H = phi_q.dim(1), T = phi_q.dim(2), F = phi_q.dim(3), Dv = v.dim(3);
  const int64_t BH = B * H, FD = F * Dv;
  const int64_t C = delta_rule_checkpoint_interval(T, checkpoint_every), nC = (T + C - 1) / C;
  Var out = tape().output({B, H, T, Dv}, {phi_q, phi_k, v, beta});
  const bool save = out.requires_grad();

  // Scratch and checkpoints from the tape before the parallel loop (never tape() in a task).
  const int64_t stride = padded(FD);
  float* S_all = tape().scratch<float>(BH * stride);
  float* ckpt = save ? tape().alloc({BH, nC, Dv, F}).data() : nullptr;  // S before each chunk
  const float* q = phi_q.value().data();
  const float* k = phi_k.value().data();
  const float* vv = v.value().data();
  const float* bv = beta.value().data();
  float* y = out.value().data();
  parallel_for(BH, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      float* S = S_all + n * stride;
      std::fill(S, S + FD, 0.0f);
      for (int64_t t = 0; t < T; ++t) {
        const int64_t row = n * T + t;
        if (save && t % C == 0) std::memcpy(ckpt + (n * nC + t / C) * FD, S, FD * sizeof(float));
        token(F, Dv, q + row * F, k + row * F, vv + row * Dv, bv[row], S, y + row * Dv, nullptr);
      }
    }
  });

  // The inputs' values and the checkpoints stay alive until the tape resets.
  record_backward(out, [=] {
    float* dq = phi_q.requires_grad() ? phi_q.grad_acc().data() : nullptr;
    float* dk = phi_k.requires_grad() ? phi_k.grad_acc().data() : nullptr;
    float* dv = v.requires_grad() ? v.grad_acc().data() : nullptr;
    float* db = beta.requires_grad() ? beta.grad_acc().data() : nullptr;
    if (!dq && !dk && !dv && !db) return;
    const float* G = out.grad().data();
    const float* q = phi_q.value().data();
    const float* k = phi_k.value().data();
    const float* vv = v.value().data();
    const float* bv = beta.value().data();
    // Per task: the chunk's states St (C + 1 matrices), D, u (C x Dv), y, dk and dq sums.
    const int64_t st_size = (C + 1) * FD, u_size = padded(C * Dv);
    const int64_t bstride = padded(st_size) + padded(FD) + u_size + padded(Dv) + 2 * padded(F);
    float* scratch = tape().scratch<float>(BH * bstride);
    parallel_for(BH, 1, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        float* St = scratch + n * bstride;
        float* D = St + padded(st_size);
        float* U = D + padded(FD);
        float* ybuf = U + u_size;
        float* dk_acc = ybuf + padded(Dv);
        float* dq_acc = dk_acc + padded(F);
        std::fill(D, D + FD, 0.0f);
        for (int64_t c = nC - 1; c >= 0; --c) {
          const int64_t t0 = c * C, L = std::min(T, t0 + C) - t0;
          std::memcpy(St, ckpt + (n * nC + c) * FD, FD * sizeof(float));
          for (int64_t i = 0; i < L; ++i) {  // recompute S_t0 .. S_{t0+L-1} and u
            const int64_t row = n * T + t0 + i;
            std::memcpy(St + (i + 1) * FD, St + i * FD, FD * sizeof(float));
            token(F, Dv, q + row * F, k + row * F, vv + row * Dv, bv[row], St + (i + 1) * FD, ybuf,
                  U + i * Dv);
          }
          for (int64_t i = L - 1; i >= 0; --i) {
            const int64_t row = n * T + t0 + i;
            const float* __restrict qt = q + row * F;
            const float* __restrict kt = k + row * F;
            const float* __restrict gy = G + row * Dv;
            const float* __restrict ut = U + i * Dv;
            const float* S_prev = St + i * FD;
            const float* S_cur = St + (i + 1) * FD;
            const float b = bv[row];
            std::fill(dk_acc, dk_acc + F, 0.0f);
            std::fill(dq_acc, dq_acc + F, 0.0f);
            float dbeta = 0.0f;
            for (int64_t j = 0; j < Dv; ++j) {
              float* __restrict Dj = D + j * F;
              const float* __restrict Pj = S_prev + j * F;
              const float* __restrict Cj = S_cur + j * F;
              const float gj = gy[j];
              for (int64_t f = 0; f < F; ++f) Dj[f] += gj * qt[f];  // D_t += gy q^T
              const float ddelta = dot(Dj, kt, F);
              dbeta += ddelta * ut[j];
              if (dv) dv[row * Dv + j] += b * ddelta;
              const float dvbar = -b * ddelta, delta = b * ut[j];
              for (int64_t f = 0; f < F; ++f) {
                dk_acc[f] += Dj[f] * delta + Pj[f] * dvbar;
                dq_acc[f] += gj * Cj[f];
                Dj[f] += dvbar * kt[f];  // -> D_{t-1}
              }
            }
            if (dq)
              for (int64_t f = 0; f < F; ++f) dq[row * F + f] += dq_acc[f];
            if (dk)
              for (int64_t f = 0; f < F; ++f) dk[row * F + f] += dk_acc[f];
            if (db) db[row] += dbeta;
          }
        }
      }
    });
  });
  return out;
}

void delta_rule_step(int64_t BH, int64_t F, int64_t Dv, const float* phi_q, const float* phi_k,
                     const float* v, const float* beta, float* S, float* out) {
  parallel_for(BH, grain_for(F * Dv), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      token(F, Dv, phi_q + n * F, phi_k + n * F, v + n * Dv, beta[n], S + n * F * Dv, out + n * Dv, nullptr);
  });
}

Var delta_rule_reference(const Var& phi_q, const Var& phi_k, const Var& v, const Var& beta) {
  check_inputs("delta_rule_reference", phi_q, phi_k, v, beta);
  const int64_t B = phi_q.dim(0), H = phi_q.dim(1), T = phi_q.dim(2), F = phi_q.dim(3), Dv = v.dim(3);
  Var S = tape().leaf(tape().zeros({B, H, Dv, F}));
  std::vector<Var> ys;
  for (int64_t t = 0; t < T; ++t) {
    Var qt = reshape(slice(phi_q, 2, t, t + 1), {B, H, F, 1});
    Var kt = reshape(slice(phi_k, 2, t, t + 1), {B, H, F, 1});
    Var vt = reshape(slice(v, 2, t, t + 1), {B, H, Dv, 1});
    Var bt = reshape(slice(beta, 2, t, t + 1), {B, H, 1, 1});
    Var delta = mul(bt, sub(vt, matmul(S, kt)));                       // (B, H, Dv, 1)
    S = add(S, matmul(delta, kt, false, /*trans_b=*/true));           // + delta k^T
    ys.push_back(reshape(matmul(S, qt), {B, H, 1, Dv}));              // y_t = S_t q
  }
  return concat(ys, 2);
}

}  // namespace na
