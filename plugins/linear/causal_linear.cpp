// Linear attention kernels: the fused causal custom function (forward and hand-written
// backward side by side), the bidirectional composite and the naive O(T^2) reference.
//
// Notation per (b, h), rows are tokens:
//   q_t = phi_q[t] (F)   k_s = phi_k[s] (F)   v_s (Dv)   g_t = dL/dout_t (Dv)
//   S_t = sum_{s<=t} k_s v_s^T (F x Dv)   z_t = sum_{s<=t} k_s (F)
//   num_t = S_t^T q_t (Dv)   den_t = q_t . z_t + eps   out_t = num_t / den_t
//
// Backward (normalize = true). From out_t = num_t / den_t:
//   dnum_t = g_t / den_t                    (Dv)
//   dden_t = -(g_t . num_t) / den_t^2 = -(g_t . out_t) / den_t     (scalar)
// num_t = S_t^T q_t and den_t = q_t . z_t + eps give, for the query,
//   dq_t = S_t dnum_t + z_t dden_t                                      (1)
// and for the running sums dS_t = q_t dnum_t^T, dz_t = dden_t q_t. Every S_t with t >= s
// contains k_s v_s^T, and every z_t with t >= s contains k_s, so with the suffix sums
//   U_s = sum_{t>=s} q_t dnum_t^T (F x Dv)   w_s = sum_{t>=s} dden_t q_t (F)
// the key and value gradients are
//   dk_s = U_s v_s + w_s      dv_s = U_s^T k_s                          (2)
// (1) is a forward sweep that rebuilds S_t, z_t (each element summed in the same order as the
// forward did, so the same values; S is kept transposed there so that S_t dnum_t is a sum of
// rows); (2) is a reverse sweep that builds U_s and w_s (U_s twice, as U_s and U_s^T, so that
// U_s v_s and U_s^T k_s are both sums of rows, which vectorise). Neither keeps anything of size
// T x F x Dv: the forward saves only den_t (B, H, T), and out_t is the output itself.
// normalize = false: out_t = num_t, so dnum_t = g_t and every dden / z / w term is absent.
#include "causal_linear.h"

#include <algorithm>
#include <cmath>

#include "nanoattn/parallel.h"

namespace na {

namespace {

// Columns per register block: the inner loops below keep a block of kBlock running sums in
// vector registers (4 AVX2 / 2 AVX-512 registers) instead of loading and storing them per row.
constexpr int64_t kBlock = 32;

// a . b over n floats. Eight independent partial sums (combined in a fixed order) let the
// compiler vectorise without -ffast-math; the result depends only on the data, never on threads.
inline float dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

// Per-task scratch stride in floats, rounded up to 64 bytes so every task's block is aligned.
inline int64_t padded(int64_t n) { return (n + 15) / 16 * 16; }

std::string shapes_str(const Var& phi_q, const Var& phi_k, const Var& v) {
  return cat("phi_q ", phi_q.shape(), ", phi_k ", phi_k.shape(), ", v ", v.shape());
}

void check_inputs(const char* op, const Var& phi_q, const Var& phi_k, const Var& v, float eps,
                  bool same_length) {
  NA_CHECK(phi_q.defined() && phi_k.defined() && v.defined(), op,
           "phi_q, phi_k and v must all be defined");
  NA_CHECK(phi_q.rank() == 4 && phi_k.rank() == 4 && v.rank() == 4, op,
           "inputs must be 4-D: phi_q (B, H, T, F), phi_k (B, H, ", (same_length ? "T" : "S"),
           ", F), v (B, H, ", (same_length ? "T" : "S"), ", Dv); got ",
           shapes_str(phi_q, phi_k, v));
  const Shape &qs = phi_q.shape(), &ks = phi_k.shape(), &vs = v.shape();
  NA_CHECK(qs[0] == ks[0] && qs[1] == ks[1] && qs[0] == vs[0] && qs[1] == vs[1], op,
           "batch and head dims (B, H) differ: ", shapes_str(phi_q, phi_k, v));
  NA_CHECK(qs[3] == ks[3], op,
           "phi_q and phi_k need the same feature dim F: ", shapes_str(phi_q, phi_k, v));
  NA_CHECK(ks[2] == vs[2], op, "phi_k and v need the same length: ", shapes_str(phi_q, phi_k, v));
  if (same_length)
    NA_CHECK(qs[2] == ks[2], op,
             "phi_q and phi_k need the same length T (causal): ", shapes_str(phi_q, phi_k, v));
  NA_CHECK(std::isfinite(eps) && eps >= 0.0f, op, "eps must be finite and >= 0, got ", eps);
}

// The inner step of the forward and of both backward sweeps, on one block of n <= kBlock columns
// of a row-major (R x ld) running-sum matrix M (pointing at the block's first column):
//   for r < R:  M[r, :] += a[r] x[:]     (the rank-1 update of the running sum)
//               acc[:]  += b[r] M[r, :]  (the product with the updated matrix)
// acc (n) stays in registers when n == kBlock (Full). Sums run over r in increasing order.
template <bool Full>
inline void update_and_multiply(float* __restrict M, int64_t ld, int64_t R,
                                const float* __restrict a, const float* __restrict x,
                                const float* __restrict b, float* __restrict out, int64_t n_dyn) {
  const int64_t n = Full ? kBlock : n_dyn;
  float acc[kBlock] = {};
  for (int64_t r = 0; r < R; ++r) {
    float* __restrict Mr = M + r * ld;
    const float ar = a[r], br = b[r];
    for (int64_t j = 0; j < n; ++j) {
      Mr[j] += ar * x[j];
      acc[j] += br * Mr[j];
    }
  }
  for (int64_t j = 0; j < n; ++j) out[j] = acc[j];
}

// Runs update_and_multiply over all ncols columns of M in blocks of kBlock.
inline void update_and_multiply_all(float* M, int64_t R, int64_t ncols, const float* a,
                                    const float* x, const float* b, float* out) {
  int64_t c = 0;
  for (; c + kBlock <= ncols; c += kBlock)
    update_and_multiply<true>(M + c, ncols, R, a, x + c, b, out + c, kBlock);
  if (c < ncols) update_and_multiply<false>(M + c, ncols, R, a, x + c, b, out + c, ncols - c);
}

// Shape of one (b, h) problem and the flat inputs.
struct Problem {
  int64_t BH, T, F, Dv;
  const float *q, *k, *v;
  bool normalize;
  float eps;
};

// One token of one (b, h): S += k_t v_t^T, z += k_t, out = S^T q_t / (q_t . z + eps) (or
// S^T q_t). Returns the denominator (0 when not normalising). The fused forward and the
// recurrent step both run exactly these operations, so the recurrent form reproduces the
// parallel one bit for bit.
inline float token_forward(int64_t F, int64_t Dv, const float* __restrict qt,
                           const float* __restrict kt, const float* __restrict vt,
                           float* __restrict S, float* __restrict z, float* __restrict ot,
                           float eps, bool normalize) {
  // num[j] = sum_f q_t[f] S[f, j], f ascending, with S already updated.
  update_and_multiply_all(S, F, Dv, kt, vt, qt, ot);
  if (!normalize) return 0.0f;
  for (int64_t f = 0; f < F; ++f) z[f] += kt[f];
  const float d = dot(qt, z, F) + eps;
  for (int64_t j = 0; j < Dv; ++j) ot[j] /= d;
  return d;
}

// Forward of task n. S (F x Dv), z (F): this task's scratch. Writes out (T x Dv) and den (T).
void forward_task(const Problem& p, int64_t n, float* __restrict S, float* __restrict z, float* out,
                  float* den) {
  const int64_t T = p.T, F = p.F, Dv = p.Dv;
  const float* q = p.q + n * T * F;
  const float* k = p.k + n * T * F;
  const float* v = p.v + n * T * Dv;
  out += n * T * Dv;
  std::fill(S, S + F * Dv, 0.0f);
  std::fill(z, z + F, 0.0f);
  for (int64_t t = 0; t < T; ++t) {
    const float d = token_forward(F, Dv, q + t * F, k + t * F, v + t * Dv, S, z, out + t * Dv,
                                  p.eps, p.normalize);
    if (p.normalize) den[n * T + t] = d;
  }
}

// dnum_t (into dn, Dv) and dden_t for token t of task n (see the top of the file).
inline float dnum_dden(const Problem& p, const float* g, const float* out, const float* den,
                       int64_t n, int64_t t, float* __restrict dn) {
  const float* gt = g + (n * p.T + t) * p.Dv;
  if (!p.normalize) {
    std::copy(gt, gt + p.Dv, dn);
    return 0.0f;
  }
  const float d = den[n * p.T + t];
  for (int64_t j = 0; j < p.Dv; ++j) dn[j] = gt[j] / d;
  return -dot(gt, out + (n * p.T + t) * p.Dv, p.Dv) / d;
}

// Backward of task n: dq += (1) by a forward sweep, dk, dv += (2) by a reverse sweep. Any of
// dq, dk, dv may be null (no gradient wanted). Scratch: M (F x Dv floats: S^T, then U), Mt
// (Dv x F: U^T, kept beside U so that U v_s is a sum of rows too), m (F: z, then w), dn (Dv),
// acc (max(F, Dv)).
void backward_task(const Problem& p, int64_t n, const float* g, const float* out, const float* den,
                   float* dq, float* dk, float* dv, float* __restrict M, float* __restrict Mt,
                   float* __restrict m, float* __restrict dn, float* __restrict acc) {
  const int64_t T = p.T, F = p.F, Dv = p.Dv;
  const float* q = p.q + n * T * F;
  const float* k = p.k + n * T * F;
  const float* v = p.v + n * T * Dv;

  if (dq) {  // (1): rebuild S_t (stored transposed, Dv x F), z_t; dq_t += S_t dnum_t + z_t dden_t
    float* dqn = dq + n * T * F;
    std::fill(M, M + F * Dv, 0.0f);
    std::fill(m, m + F, 0.0f);
    for (int64_t t = 0; t < T; ++t) {
      const float* __restrict kt = k + t * F;
      const float dden = dnum_dden(p, g, out, den, n, t, dn);
      // S^T += v_t k_t^T and acc = S_t dnum_t: acc[f] = sum_j dnum_t[j] S^T[j, f], j ascending.
      update_and_multiply_all(M, Dv, F, v + t * Dv, kt, dn, acc);
      float* __restrict dqt = dqn + t * F;
      for (int64_t f = 0; f < F; ++f) {
        m[f] += kt[f];
        dqt[f] += acc[f] + m[f] * dden;
      }
    }
  }

  if (dk ||
      dv) {  // (2): U_s (F x Dv), w_s as suffix sums; dk_s += U_s v_s + w_s, dv_s += U_s^T k_s
    std::fill(M, M + F * Dv, 0.0f);
    std::fill(Mt, Mt + F * Dv, 0.0f);
    std::fill(m, m + F, 0.0f);
    for (int64_t t = T - 1; t >= 0; --t) {
      const float* __restrict qt = q + t * F;
      const float* __restrict kt = k + t * F;
      const float* __restrict vt = v + t * Dv;
      const float dden = dnum_dden(p, g, out, den, n, t, dn);
      if (dv) {  // U += q_t dnum_t^T and acc = U^T k_t: acc[j] = sum_f k_t[f] U[f, j], f ascending
        update_and_multiply_all(M, F, Dv, qt, dn, kt, acc);
        float* __restrict dvt = dv + (n * T + t) * Dv;
        for (int64_t j = 0; j < Dv; ++j) dvt[j] += acc[j];
      }
      if (dk) {  // U^T += dnum_t q_t^T and acc = U v_t: acc[f] = sum_j v_t[j] U^T[j, f], j ascending
        update_and_multiply_all(Mt, Dv, F, dn, qt, vt, acc);
        float* __restrict dkt = dk + (n * T + t) * F;
        for (int64_t f = 0; f < F; ++f) {
          m[f] += dden * qt[f];
          dkt[f] += acc[f] + m[f];
        }
      }
    }
  }
}

}  // namespace

Var causal_linear_attention(const Var& phi_q, const Var& phi_k, const Var& v, float eps,
                            bool normalize) {
  check_inputs("causal_linear_attention", phi_q, phi_k, v, eps, /*same_length=*/true);
  const Shape& qs = phi_q.shape();
  Problem p{qs[0] * qs[1], qs[2], qs[3], v.dim(3), nullptr, nullptr, nullptr, normalize, eps};
  Var out = tape().output({qs[0], qs[1], p.T, p.Dv}, {phi_q, phi_k, v});

  // All scratch comes from the tape before the parallel loop (never tape() in a task).
  const int64_t stride = padded(p.F * p.Dv) + padded(p.F);
  float* scratch = tape().scratch<float>(p.BH * stride);
  float* den = normalize ? tape().alloc({p.BH, p.T}).data() : nullptr;  // saved for backward
  p.q = phi_q.value().data();
  p.k = phi_k.value().data();
  p.v = v.value().data();
  float* o = out.value().data();
  parallel_for(p.BH, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      float* S = scratch + n * stride;
      forward_task(p, n, S, S + padded(p.F * p.Dv), o, den);
    }
  });

  // The inputs' values and `den` stay alive until the tape resets: p's pointers remain valid.
  record_backward(out, [=] {
    float* dq = phi_q.requires_grad() ? phi_q.grad_acc().data() : nullptr;
    float* dk = phi_k.requires_grad() ? phi_k.grad_acc().data() : nullptr;
    float* dv = v.requires_grad() ? v.grad_acc().data() : nullptr;
    if (!dq && !dk && !dv) return;
    const float* g = out.grad().data();
    const float* ov = out.value().data();
    const int64_t M_size = padded(p.F * p.Dv), m_size = padded(p.F), dn_size = padded(p.Dv);
    const int64_t bstride = 2 * M_size + m_size + dn_size + padded(std::max(p.F, p.Dv));
    float* bscratch = tape().scratch<float>(p.BH * bstride);  // before the parallel loop
    parallel_for(p.BH, 1, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        float* M = bscratch + n * bstride;
        float* Mt = M + M_size;
        float* m = Mt + M_size;
        float* dn = m + m_size;
        float* acc = dn + dn_size;
        backward_task(p, n, g, ov, den, dq, dk, dv, M, Mt, m, dn, acc);
      }
    });
  });
  return out;
}

void linear_attention_step(int64_t BH, int64_t F, int64_t Dv, const float* phi_q,
                           const float* phi_k, const float* v, float* S, float* z, float* out,
                           float eps, bool normalize) {
  parallel_for(BH, grain_for(F * Dv), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      token_forward(F, Dv, phi_q + n * F, phi_k + n * F, v + n * Dv, S + n * F * Dv, z + n * F,
                    out + n * Dv, eps, normalize);
  });
}

Var bidirectional_linear_attention(const Var& phi_q, const Var& phi_k, const Var& v, float eps,
                                   bool normalize) {
  check_inputs("bidirectional_linear_attention", phi_q, phi_k, v, eps, /*same_length=*/false);
  Var kv = matmul(phi_k, v, /*trans_a=*/true);  // (B, H, F, Dv) = sum_s k_s v_s^T
  Var num = matmul(phi_q, kv);                  // (B, H, T, Dv)
  if (!normalize) return num;
  Var ksum = sum(phi_k, 2, /*keepdim=*/true);                               // (B, H, 1, F)
  Var den = add_scalar(matmul(phi_q, ksum, false, /*trans_b=*/true), eps);  // (B, H, T, 1)
  return div(num, den);
}

Var linear_attention_reference(const Var& phi_q, const Var& phi_k, const Var& v, float eps,
                               bool normalize, bool causal) {
  check_inputs("linear_attention_reference", phi_q, phi_k, v, eps, /*same_length=*/false);
  Var a = matmul(phi_q, phi_k, false, /*trans_b=*/true);  // (B, H, T, S): a[t, s] = q_t . k_s
  if (causal) {
    const int64_t T = a.dim(2), S = a.dim(3);
    Tensor mask = tape().alloc({T, S});  // 1 where s > t: the future, zeroed
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = 0; s < S; ++s) mask[t * S + s] = s > t ? 1.0f : 0.0f;
    a = masked_fill(a, mask, 0.0f);
  }
  Var num = matmul(a, v);  // (B, H, T, Dv)
  if (!normalize) return num;
  return div(num, add_scalar(sum(a, -1, /*keepdim=*/true), eps));  // den: (B, H, T, 1)
}

}  // namespace na
