// The fused sparse softmax attention kernel. See sparse_attention.h for the contract.
#include "sparse_attention.h"

#include <algorithm>
#include <cstring>

#include "nanoattn/parallel.h"
#include "slots.h"
#include "sparse_row.h"

namespace na {

namespace {

constexpr const char* kOp = "sparse_attention";
using sparse::kNegInf;
using sparse::Slots;

struct Dims {
  int64_t B, H, T, S, D, Dv;
};

Dims check_inputs(const Var& q, const Var& k, const Var& v, const SparsePattern& pat) {
  NA_CHECK(q.defined() && k.defined() && v.defined(), kOp, "q, k and v must all be defined");
  const Shape &qs = q.shape(), &ks = k.shape(), &vs = v.shape();
  NA_CHECK(qs.rank() == 4 && ks.rank() == 4 && vs.rank() == 4, kOp,
           "q, k, v must be (B, H, T, D), (B, H, S, D), (B, H, S, Dv); got q ", qs, ", k ", ks,
           ", v ", vs);
  NA_CHECK(qs[0] == ks[0] && qs[0] == vs[0] && qs[1] == ks[1] && qs[1] == vs[1], kOp,
           "batch and head dims (B, H) differ: q ", qs, ", k ", ks, ", v ", vs);
  NA_CHECK(qs[3] == ks[3] && ks[2] == vs[2], kOp, "q ", qs, ", k ", ks, ", v ", vs,
           ": q and k need the same head dim, k and v the same length");
  NA_CHECK(pat.rows == qs[2] && pat.keys == ks[2], kOp, "the pattern has ", pat.rows,
           " rows over ", pat.keys, " keys, but q ", qs, " and k ", ks, " give T = ", qs[2],
           ", S = ", ks[2]);
  NA_CHECK(pat.offsets != nullptr && (pat.index != nullptr || pat.max_row == 0), kOp,
           "the pattern has no arrays");
  const int64_t need = pat.layout == SparsePattern::Layout::PerTask ? qs[0] * qs[1] : 1;
  NA_CHECK(pat.count >= need && pat.count >= 1, kOp, "the pattern holds ", pat.count,
           " patterns; q ", qs, " needs ", need);
  return {qs[0], qs[1], qs[2], ks[2], qs[3], vs[3]};
}

}  // namespace

Var sparse_attention(const Var& q, const Var& k, const Var& v, const SparsePattern& pattern,
                     float scale) {
  const Dims d = check_inputs(q, k, v, pattern);
  const int64_t B = d.B, H = d.H, T = d.T, S = d.S, D = d.D, Dv = d.Dv;
  const SparsePattern pat = pattern;  // the arrays it points to live in the tape's arena
  Var out = tape().output({B, H, T, Dv}, {q, k, v});
  const bool save = out.requires_grad();
  Tensor stats = save ? tape().alloc({B, H, T, 2}) : Tensor();  // per row: max, 1 / sum
  const int64_t blocks = (T + kSparseRowBlock - 1) / kSparseRowBlock;
  const Slots slots(B * H * blocks, kSparseSlots);
  const int64_t row_cap = std::max<int64_t>(1, pat.max_row);
  float* scratch = tape().scratch<float>(slots.count * row_cap);

  const float *qp = q.value().data(), *kp = k.value().data(), *vp = v.value().data();
  float* op = out.value().data();
  float* sp = save ? stats.data() : nullptr;
  slots.run([&](int64_t slot, int64_t item) {
    const int64_t task = item / blocks, t0 = (item % blocks) * kSparseRowBlock;
    const int64_t t1 = std::min(T, t0 + kSparseRowBlock);
    const int64_t* off = pat.offsets + pat.pattern_of(task / H, task % H, H) * (T + 1);
    const float* kt = kp + task * S * D;
    const float* vt = vp + task * S * Dv;
    float* p = scratch + slot * row_cap;
    for (int64_t t = t0; t < t1; ++t) {
      const int32_t* idx = pat.index + off[t];
      auto key = [&](int64_t e) { return idx[e] >= 0 ? kt + idx[e] * D : nullptr; };
      auto val = [&](int64_t e) { return vt + (idx[e] >= 0 ? idx[e] : -1 - idx[e]) * Dv; };
      const sparse::RowStats st = sparse::attend_row(qp + (task * T + t) * D, off[t + 1] - off[t],
                                                     key, val, D, Dv, scale, p,
                                                     op + (task * T + t) * Dv);
      if (sp) {
        sp[2 * (task * T + t)] = st.max;
        sp[2 * (task * T + t) + 1] = st.sum > 0.0f ? 1.0f / st.sum : 0.0f;
      }
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
    const Slots tasks(B * H, kSparseSlots);
    float* work = tape().scratch<float>(tasks.count * row_cap);
    const float *qp = q.value().data(), *kp = k.value().data(), *vp = v.value().data();
    const float *op = out.value().data(), *gp = out.grad().data(), *sp = stats.data();

    tasks.run([&](int64_t slot, int64_t task) {
      const int64_t* off = pat.offsets + pat.pattern_of(task / H, task % H, H) * (T + 1);
      const float* qt = qp + task * T * D;
      const float* kt = kp + task * S * D;
      const float* vt = vp + task * S * Dv;
      float* dqt = dq ? dq + task * T * D : nullptr;
      float* dkt = dk ? dk + task * S * D : nullptr;
      float* dvt = dv ? dv + task * S * Dv : nullptr;
      // A fresh gradient (contents undefined) gets this task's slice zeroed; then every row
      // adds. (q, k and v may be one Var sharing one buffer: zero before any row adds.)
      if (dqt && bq == 0.0f) std::memset(dqt, 0, T * D * sizeof(float));
      if (dkt && bk == 0.0f) std::memset(dkt, 0, S * D * sizeof(float));
      if (dvt && bv == 0.0f) std::memset(dvt, 0, S * Dv * sizeof(float));
      float* p = work + slot * row_cap;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t n = off[t + 1] - off[t];
        const float m = sp[2 * (task * T + t)], inv = sp[2 * (task * T + t) + 1];
        if (n == 0 || m == kNegInf) continue;
        const int32_t* idx = pat.index + off[t];
        const float* qr = qt + t * D;
        const float* g = gp + (task * T + t) * Dv;
        // p = exp(score - max) / sum, recomputed exactly as the forward scored the row.
        for (int64_t e = 0; e < n; ++e)
          p[e] = idx[e] >= 0 ? scale * sparse::dot(qr, kt + idx[e] * D, D) : sparse::kFixedScore;
        for (int64_t e = 0; e < n; ++e) p[e] = sparse::exp_approx(p[e] - m) * inv;
        const float drow = sparse::dot(g, op + (task * T + t) * Dv, Dv);
        for (int64_t e = 0; e < n; ++e) {
          const bool fixed = idx[e] < 0;
          const int64_t s = fixed ? -1 - idx[e] : idx[e];
          if (dvt) sparse::axpy(p[e], g, dvt + s * Dv, Dv);
          if (!need_ds || fixed) continue;
          const float ds = scale * p[e] * (sparse::dot(g, vt + s * Dv, Dv) - drow);
          if (dqt) sparse::axpy(ds, kt + s * D, dqt + t * D, D);
          if (dkt) sparse::axpy(ds, qr, dkt + s * D, D);
        }
      }
    });
  });
  return out;
}

}  // namespace na
