// Fused softmax attention (forward + hand-written backward, one tape entry) and its composite
// reference. See softmax_kernel.h for the contract.
//
// Forward, per (b, h) and per block of up to R = kSoftmaxAttentionRowBlock query rows t0..t1:
//   Sc  = scale * q[t0:t1] k[0:n]^T            (R x n; causal: n = t1, else n = S)
//   P   = softmax of each row over its visible keys (0 elsewhere); lse[t] = log sum exp
//   out[t0:t1] = P v[0:n]
// Backward, same blocks in the same order, recomputing P = exp(Sc - lse):
//   dV[0:n] += P^T dO        dP = dO v[0:n]^T        Drow[t] = sum_c dO[t,c] out[t,c]
//   dS = P * (dP - Drow)     dQ[t0:t1] += scale dS k[0:n]     dK[0:n] += scale dS^T q[t0:t1]
// (Drow = sum_s P dP: the softmax Jacobian's row term, read off the output instead of a sum
// over keys.)
#include "softmax_kernel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "nanoattn/blas.h"
#include "nanoattn/parallel.h"
#include "nanoattn/vmath.h"

namespace na {

namespace {

constexpr const char* kOp = "softmax_attention";
constexpr int64_t kR = kSoftmaxAttentionRowBlock;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Dims {
  int64_t B, H, T, S, D, Dv;
};

// Checks everything and returns the dims. `op` names the caller in the message.
Dims check_inputs(const char* op, const Var& q, const Var& k, const Var& v, bool causal,
                  const Tensor* mask) {
  NA_CHECK(q.defined() && k.defined() && v.defined(), op, "q, k and v must all be defined");
  const Shape &qs = q.shape(), &ks = k.shape(), &vs = v.shape();
  NA_CHECK(qs.rank() == 4 && ks.rank() == 4 && vs.rank() == 4, op,
           "q, k, v must be (B, H, T, D), (B, H, S, D), (B, H, S, Dv); got q ", qs, ", k ", ks,
           ", v ", vs);
  NA_CHECK(qs[0] == ks[0] && qs[0] == vs[0] && qs[1] == ks[1] && qs[1] == vs[1], op,
           "batch and head dims (B, H) differ: q ", qs, ", k ", ks, ", v ", vs);
  NA_CHECK(qs[3] == ks[3], op, "q ", qs, " and k ", ks, " must have the same head dim D");
  NA_CHECK(ks[2] == vs[2], op, "k ", ks, " and v ", vs, " must have the same key length S");
  NA_CHECK(qs[3] >= 1 && vs[3] >= 1 && ks[2] >= 1, op,
           "head dims and the key length must be >= 1; got q ", qs, ", k ", ks, ", v ", vs);
  NA_CHECK(!causal || qs[2] == ks[2], op, "causal attention needs T == S; got q ", qs, " and k ",
           ks, " (use causal = false for cross-attention)");
  if (mask) {
    NA_CHECK(mask->defined() && mask->shape() == (Shape{qs[0], ks[2]}), op, "key_padding_mask ",
             (mask->defined() ? mask->shape().str() : std::string("(undefined)")),
             " must be (B, S) = (", qs[0], ", ", ks[2], ") for q ", qs, " and k ", ks);
  }
  return {qs[0], qs[1], qs[2], ks[2], qs[3], vs[3]};
}

// The (b, h) tasks cut into at most kSoftmaxAttentionSlots fixed chunks; chunk i runs its
// tasks in order and owns scratch slot i. Which thread runs a chunk never matters: every slot
// is written before it is read.
struct Slots {
  int64_t tasks, per, count;
  explicit Slots(int64_t tasks_) : tasks(tasks_) {
    per = std::max<int64_t>(1, (tasks + kSoftmaxAttentionSlots - 1) / kSoftmaxAttentionSlots);
    count = (tasks + per - 1) / per;
  }
  template <class Body>  // body(slot, task)
  void run(const Body& body) const {
    parallel_for(count, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; ++c)
        for (int64_t t = c * per, e = std::min(tasks, t + per); t < e; ++t) body(c, t);
    });
  }
};

// Keys row t may see, among the n columns of its block: causal -> t + 1, else all n.
inline int64_t visible(bool causal, int64_t t, int64_t n) { return causal ? std::min(n, t + 1) : n; }

// exp_approx (nanoattn/vmath.h) rather than libm's expf: it vectorises in the row loops below;
// expf does not, and was about half of the kernel's time. Inputs here are scores minus their
// row max or logsumexp, i.e. <= 0 up to rounding.

// Row reductions in kLanes interleaved partial results combined in a fixed order: they
// vectorise, and the result depends only on the row, never on the thread.
constexpr int64_t kLanes = 16;

// max of row[j], j < n, over the keys that are not padding (pad null: none is); -inf if none.
float row_max(const float* row, const float* pad, int64_t n) {
  float acc[kLanes];
  std::fill(acc, acc + kLanes, kNegInf);
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) {
      const float x = (pad && pad[j + l] != 0.0f) ? kNegInf : row[j + l];
      acc[l] = x > acc[l] ? x : acc[l];
    }
  for (; j < n; ++j)
    if (!pad || pad[j] == 0.0f) acc[0] = std::max(acc[0], row[j]);
  float m = acc[0];
  for (int64_t l = 1; l < kLanes; ++l) m = std::max(m, acc[l]);
  return m;
}

// row[j] = exp(row[j] - shift) for the vis visible keys that are not padding, 0 for the rest
// of the n columns. Returns the sum of the row.
float row_exp(float* row, const float* pad, int64_t vis, int64_t n, float shift) {
  if (pad) {
    for (int64_t j = 0; j < vis; ++j) {
      const float e = exp_approx(row[j] - shift);
      row[j] = pad[j] != 0.0f ? 0.0f : e;
    }
  } else {
    for (int64_t j = 0; j < vis; ++j) row[j] = exp_approx(row[j] - shift);
  }
  std::fill(row + vis, row + n, 0.0f);
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= vis; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) acc[l] += row[j + l];
  for (; j < vis; ++j) acc[0] += row[j];
  float sum = 0.0f;
  for (int64_t l = 0; l < kLanes; ++l) sum += acc[l];
  return sum;
}

}  // namespace

void softmax_attention_cached_row(int64_t n, int64_t D, int64_t Dv, const float* q, const float* Kt,
                                  int64_t ldk, const float* V, float scale, float* scores, float* out) {
  // Blocks of kW scores / output columns accumulate in registers (a fixed width the compiler
  // unrolls) rather than in memory; each sum still runs in a fixed order.
  constexpr int64_t kW = 64;
  for (int64_t j0 = 0; j0 < n; j0 += kW) {
    float acc[kW] = {};
    if (j0 + kW <= n) {
      for (int64_t c = 0; c < D; ++c) {
        const float qc = scale * q[c], *kc = Kt + c * ldk + j0;
        for (int64_t j = 0; j < kW; ++j) acc[j] += qc * kc[j];
      }
      std::copy_n(acc, kW, scores + j0);
    } else {
      for (int64_t c = 0; c < D; ++c) {
        const float qc = scale * q[c], *kc = Kt + c * ldk + j0;
        for (int64_t j = 0; j < n - j0; ++j) acc[j] += qc * kc[j];
      }
      std::copy_n(acc, n - j0, scores + j0);
    }
  }
  const float m = row_max(scores, nullptr, n);
  const float inv = 1.0f / row_exp(scores, nullptr, n, n, m);
  constexpr int64_t kC = 32;
  for (int64_t c0 = 0; c0 < Dv; c0 += kC) {
    float acc[kC] = {};
    if (c0 + kC <= Dv) {
      for (int64_t j = 0; j < n; ++j) {
        const float p = scores[j], *vj = V + j * Dv + c0;
        for (int64_t c = 0; c < kC; ++c) acc[c] += p * vj[c];
      }
    } else {
      for (int64_t j = 0; j < n; ++j) {
        const float p = scores[j], *vj = V + j * Dv + c0;
        for (int64_t c = 0; c < Dv - c0; ++c) acc[c] += p * vj[c];
      }
    }
    for (int64_t c = 0; c < std::min(kC, Dv - c0); ++c) out[c0 + c] = acc[c] * inv;
  }
}

Var softmax_attention(const Var& q, const Var& k, const Var& v, float scale, bool causal,
                      const Tensor* key_padding_mask) {
  const Dims d = check_inputs(kOp, q, k, v, causal, key_padding_mask);
  const int64_t B = d.B, H = d.H, T = d.T, S = d.S, D = d.D, Dv = d.Dv;
  Var out = tape().output({B, H, T, Dv}, {q, k, v});
  const bool save = out.requires_grad();
  const Tensor mask = key_padding_mask ? *key_padding_mask : Tensor();

  // All scratch comes from the tape, here, on the calling thread.
  const Slots slots(B * H);
  float* scores = tape().scratch<float>(slots.count * kR * S);
  float* inv_sum = tape().scratch<float>(slots.count * kR);
  Tensor lse = save ? tape().alloc({B, H, T}) : Tensor();

  const float *qp = q.value().data(), *kp = k.value().data(), *vp = v.value().data();
  const float* mp = mask.defined() ? mask.data() : nullptr;
  float* op = out.value().data();
  float* lp = save ? lse.data() : nullptr;

  slots.run([&](int64_t slot, int64_t task) {
    const float* qt = qp + task * T * D;
    const float* kt = kp + task * S * D;
    const float* vt = vp + task * S * Dv;
    const float* pad = mp ? mp + (task / H) * S : nullptr;
    float* ot = op + task * T * Dv;
    float* sc = scores + slot * kR * S;
    for (int64_t t0 = 0; t0 < T; t0 += kR) {
      const int64_t nr = std::min(kR, T - t0);
      const int64_t n = causal ? t0 + nr : S;  // columns any row of the block sees
      gemm_serial(false, true, nr, n, D, scale, qt + t0 * D, D, kt, D, 0.0f, sc, n);
      // Unnormalised e = exp(s - max) per row; the 1/sum goes onto the output row instead.
      float* inv = inv_sum + slot * kR;
      for (int64_t i = 0; i < nr; ++i) {
        float* row = sc + i * n;
        const int64_t vis = visible(causal, t0 + i, n);
        const float m = row_max(row, pad, vis);
        float l = kNegInf;
        if (m == kNegInf) {  // no visible key: the row outputs 0
          std::fill(row, row + n, 0.0f);
          inv[i] = 0.0f;
        } else {
          const float sum = row_exp(row, pad, vis, n, m);
          inv[i] = 1.0f / sum;
          l = m + std::log(sum);
        }
        if (lp) lp[task * T + t0 + i] = l;
      }
      float* ob = ot + t0 * Dv;
      gemm_serial(false, false, nr, Dv, n, 1.0f, sc, n, vt, Dv, 0.0f, ob, Dv);
      for (int64_t i = 0; i < nr; ++i)
        for (int64_t c = 0; c < Dv; ++c) ob[i * Dv + c] *= inv[i];
    }
  });

  record_backward(out, [=] {
    const bool gq = q.requires_grad(), gk = k.requires_grad(), gv = v.requires_grad();
    if (!gq && !gk && !gv) return;
    float bq = 1.0f, bk = 1.0f, bv = 1.0f;
    float* dq = gq ? q.grad_sink(bq).data() : nullptr;
    float* dk = gk ? k.grad_sink(bk).data() : nullptr;
    float* dv = gv ? v.grad_sink(bv).data() : nullptr;
    const bool need_ds = gq || gk;
    // Two blocks per slot: P, then dP (turned into dS in place).
    float* work = tape().scratch<float>(slots.count * 2 * kR * S);
    const float *qp = q.value().data(), *kp = k.value().data(), *vp = v.value().data();
    const float *op = out.value().data(), *gp = out.grad().data(), *lp = lse.data();
    const float* mp = mask.defined() ? mask.data() : nullptr;

    slots.run([&](int64_t slot, int64_t task) {
      const float* qt = qp + task * T * D;
      const float* kt = kp + task * S * D;
      const float* vt = vp + task * S * Dv;
      const float* ot = op + task * T * Dv;
      const float* gt = gp + task * T * Dv;
      const float* lt = lp + task * T;
      const float* pad = mp ? mp + (task / H) * S : nullptr;
      float* dqt = dq ? dq + task * T * D : nullptr;
      float* dkt = dk ? dk + task * S * D : nullptr;
      float* dvt = dv ? dv + task * S * Dv : nullptr;
      // A fresh gradient (contents undefined) gets this task's slice zeroed, then every block
      // adds. (Never beta = 0 in the products: q, k and v may be one Var sharing one buffer.)
      if (dqt && bq == 0.0f) std::memset(dqt, 0, T * D * sizeof(float));
      if (dkt && bk == 0.0f) std::memset(dkt, 0, S * D * sizeof(float));
      if (dvt && bv == 0.0f) std::memset(dvt, 0, S * Dv * sizeof(float));
      float* P = work + slot * 2 * kR * S;
      float* dP = P + kR * S;
      for (int64_t t0 = 0; t0 < T; t0 += kR) {
        const int64_t nr = std::min(kR, T - t0);
        const int64_t n = causal ? t0 + nr : S;
        // P = exp(scale q k^T - lse), exactly 0 where masked.
        gemm_serial(false, true, nr, n, D, scale, qt + t0 * D, D, kt, D, 0.0f, P, n);
        for (int64_t i = 0; i < nr; ++i) {
          float* row = P + i * n;
          const float l = lt[t0 + i];
          if (l == kNegInf) std::fill(row, row + n, 0.0f);
          else row_exp(row, pad, visible(causal, t0 + i, n), n, l);
        }
        const float* g = gt + t0 * Dv;
        if (dvt) gemm_serial(true, false, n, Dv, nr, 1.0f, P, n, g, Dv, 1.0f, dvt, Dv);
        if (!need_ds) continue;
        gemm_serial(false, true, nr, n, Dv, 1.0f, g, Dv, vt, Dv, 0.0f, dP, n);
        for (int64_t i = 0; i < nr; ++i) {
          const float* gi = g + i * Dv;
          const float* oi = ot + (t0 + i) * Dv;
          double acc = 0.0;
          for (int64_t c = 0; c < Dv; ++c) acc += static_cast<double>(gi[c]) * oi[c];
          const float drow = static_cast<float>(acc);
          const float* pi = P + i * n;
          float* si = dP + i * n;
          for (int64_t j = 0; j < n; ++j) si[j] = pi[j] * (si[j] - drow);
        }
        if (dqt)
          gemm_serial(false, false, nr, D, n, scale, dP, n, kt, D, 1.0f, dqt + t0 * D, D);
        if (dkt)
          gemm_serial(true, false, n, D, nr, scale, dP, n, qt + t0 * D, D, 1.0f, dkt, D);
      }
    });
  });
  return out;
}

Var softmax_attention_reference(const Var& q, const Var& k, const Var& v, float scale,
                                bool causal, const Tensor* key_padding_mask) {
  const Dims d = check_inputs("softmax_attention_reference", q, k, v, causal, key_padding_mask);
  Var s = na::scale(matmul(q, k, false, true), scale);  // (B, H, T, S)
  if (!key_padding_mask) return matmul(softmax(s, causal), v);
  // Padding keys get a huge negative score (exp gives exactly 0 unless the whole row is
  // padding), then their probabilities are zeroed outright: that also makes a row that sees
  // only padding output 0 with no gradient, as the fused kernel does.
  Tensor m = key_padding_mask->reshape({d.B, 1, 1, d.S});
  Var p = softmax(masked_fill(s, m, -1e30f), causal);
  return matmul(masked_fill(p, m, 0.0f), v);
}

}  // namespace na
