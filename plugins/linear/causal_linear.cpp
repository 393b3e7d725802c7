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
// The forward and all three backward sweeps are one primitive, `scan` (a rank-1 update of a
// running matrix, then its product with a vector, token after token), run on blocks of tokens
// whose rows a task first gathers into small contiguous buffers.
// With a fused feature map (KernelMap::EluPlusOne) the features are computed as the rows are
// gathered, and dq, dk above are multiplied by phi'(raw q), phi'(raw k) on the way out.
// The tasks read and write rows through a Layout: (B, H, T, d) tensors, or the packed
// projection (B, T, 2 H F + H Dv) and a (B, T, H Dv) output.
#include "causal_linear.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <tuple>
#include <vector>

#include "feature_maps.h"
#include "nanoattn/parallel.h"

namespace na {

namespace {

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

// ---- The scan: the inner loop of the forward and of all three backward sweeps ----
// For each token t (ascending, or descending when reverse), on a running R x C matrix M:
//   M[r, :] += a_t[r] x_t       for every row r   (the rank-1 update of the running sum)
//   y_t      = sum_r b_t[r] M[r, :]  r ascending  (the product with the updated matrix)
// a, b are (T, R) and x, y (T, C), contiguous. The loops run over strips of rows and blocks of
// columns, holding a strip's block of M in vector registers for all T tokens and adding the
// strip's share to y_t in memory: each M element is loaded and stored once per call instead of
// once per token, and every sum is still taken in the same order (r ascending, one FMA per
// term), so the result does not depend on the strip or block sizes.
#if defined(__AVX512F__)
constexpr int kLanes = 16;
constexpr int kStripRows = 8;  // 8 rows x 2 vectors of M + x, y: 22 of 32 registers
#else
constexpr int kLanes = 8;
constexpr int kStripRows = 4;  // 4 x 2 + x, y: 14 of 16 registers
#endif
constexpr int kColVecs = 2;
constexpr int64_t kColBlock = kColVecs * kLanes;
using vec = float __attribute__((vector_size(kLanes * sizeof(float))));

inline vec load(const float* p) {
  vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, const vec& v) { std::memcpy(p, &v, sizeof v); }

// One strip of RS rows and one block of kColBlock columns: M, a, b point at the strip's first
// row, M, x, y at the block's first column. first: y_t starts at 0 (the first strip).
template <int RS>
void scan_strip(float* M, int64_t R, int64_t C, int64_t T, bool reverse, bool first,
                const float* a, const float* x, const float* b, float* y) {
  vec m[RS][kColVecs];
  for (int r = 0; r < RS; ++r)
    for (int c = 0; c < kColVecs; ++c) m[r][c] = load(M + r * C + c * kLanes);
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    const float *at = a + t * R, *bt = b + t * R, *xt = x + t * C;
    float* yt = y + t * C;
    vec xv[kColVecs], yv[kColVecs];
    for (int c = 0; c < kColVecs; ++c) {
      xv[c] = load(xt + c * kLanes);
      yv[c] = first ? vec{} : load(yt + c * kLanes);
    }
    for (int r = 0; r < RS; ++r) {
      const float ar = at[r], br = bt[r];
      for (int c = 0; c < kColVecs; ++c) {
        m[r][c] += ar * xv[c];
        yv[c] += br * m[r][c];
      }
    }
    for (int c = 0; c < kColVecs; ++c) store(yt + c * kLanes, yv[c]);
  }
  for (int r = 0; r < RS; ++r)
    for (int c = 0; c < kColVecs; ++c) store(M + r * C + c * kLanes, m[r][c]);
}

// scan_strip for the last `rows` (< RS) rows too: each strip height is its own instance.
template <int RS>
void scan_strip_rows(int64_t rows, float* M, int64_t R, int64_t C, int64_t T, bool reverse,
                     bool first, const float* a, const float* x, const float* b, float* y) {
  if constexpr (RS > 1)
    if (rows < RS)
      return scan_strip_rows<RS - 1>(rows, M, R, C, T, reverse, first, a, x, b, y);
  scan_strip<RS>(M, R, C, T, reverse, first, a, x, b, y);
}

void scan(float* __restrict M, int64_t R, int64_t C, int64_t T, bool reverse,
          const float* __restrict a, const float* __restrict x, const float* __restrict b,
          float* __restrict y) {
  int64_t c0 = 0;
  for (; c0 + kColBlock <= C; c0 += kColBlock)
    for (int64_t r0 = 0; r0 < R; r0 += kStripRows)
      scan_strip_rows<kStripRows>(std::min<int64_t>(kStripRows, R - r0), M + r0 * C + c0, R, C,
                                  T, reverse, r0 == 0, a + r0, x + c0, b + r0, y + c0);
  if (c0 == C) return;
  for (int64_t s = 0; s < T; ++s) {  // the last C % kColBlock columns, the same sums unblocked
    const int64_t t = reverse ? T - 1 - s : s;
    const float *at = a + t * R, *bt = b + t * R, *xt = x + t * C;
    for (int64_t c = c0; c < C; ++c) {
      float acc = 0.0f;
      for (int64_t r = 0; r < R; ++r) {
        M[r * C + c] += at[r] * xt[c];
        acc += bt[r] * M[r * C + c];
      }
      y[t * C + c] = acc;
    }
  }
}

// ---- Where the rows are ----

// Where the rows of one tensor are: row t of task n = (b, h) starts at
// b * batch + h * head + t * token floats from the tensor's first (used) element.
struct Layout {
  int64_t batch, head, token;
};

// (B, H, T, width) contiguous.
Layout heads_layout(int64_t H, int64_t T, int64_t width) { return {H * T * width, T * width, width}; }
// (B, T, columns) with head h's width floats at column h * width (the packed projection).
Layout packed_layout(int64_t T, int64_t columns, int64_t width) { return {T * columns, width, columns}; }

// Shape of the (b, h) problems, the inputs and the layouts of q, k (F wide), v, out (Dv wide).
// Gradients have their tensor's layout; den is (BH, T) contiguous.
struct Problem {
  int64_t BH, H, T, F, Dv;
  const float *q, *k, *v;
  Layout lq, lk, lv, lo;
  bool normalize;
  float eps;
  KernelMap map;
};

// Where task n's rows start in each layout (computed once per task: it divides).
struct TaskRows {
  int64_t q, k, v, o;
};
inline TaskRows task_rows(const Problem& p, int64_t n) {
  const int64_t b = n / p.H, h = n % p.H;
  auto at = [&](const Layout& l) { return b * l.batch + h * l.head; };
  return {at(p.lq), at(p.lk), at(p.lv), at(p.lo)};
}

// Row t of a task whose rows start at `start` in a tensor at base with layout l.
template <class Float>
inline Float* row(Float* base, const Layout& l, int64_t start, int64_t t) {
  return base + start + t * l.token;
}

// In the packed layout a task's consecutive rows are a whole projection row apart (3 KiB in
// the M model), beyond the hardware prefetchers' reach: without this the kernel ran 2x slower
// there. Asks for the rows of token t (inputs; with g, the output's value and gradient rows;
// with dq etc., the gradient rows) some tokens before they are needed.
constexpr int64_t kPrefetchAhead = 16;

inline void prefetch_span(const float* x, int64_t len) {
  for (int64_t i = 0; i < len; i += 16) __builtin_prefetch(x + i);
}

// noipa: GCC otherwise finds this function free of side effects and deletes its calls,
// prefetches and all (seen with GCC 12: no prefetch instruction was left in the kernel).
[[gnu::noipa]] void prefetch_token(const Problem& p, const TaskRows& r, int64_t t, const float* g = nullptr,
                           const float* out = nullptr, const float* dq = nullptr,
                           const float* dk = nullptr, const float* dv = nullptr) {
  if (t < 0 || t >= p.T) return;
  prefetch_span(row(p.q, p.lq, r.q, t), p.F);
  prefetch_span(row(p.k, p.lk, r.k, t), p.F);
  prefetch_span(row(p.v, p.lv, r.v, t), p.Dv);
  if (g) prefetch_span(row(g, p.lo, r.o, t), p.Dv);
  if (out) prefetch_span(row(out, p.lo, r.o, t), p.Dv);
  if (dq) prefetch_span(row(dq, p.lq, r.q, t), p.F);
  if (dk) prefetch_span(row(dk, p.lk, r.k, t), p.F);
  if (dv) prefetch_span(row(dv, p.lv, r.v, t), p.Dv);
}

// ---- Per-token pieces ----

// The features of one token's F inputs x into buf: x itself, or elu + 1 of it.
inline void features_into(const Problem& p, const float* __restrict x, float* __restrict buf) {
  if (p.map == KernelMap::None)
    std::copy(x, x + p.F, buf);
  else
    for (int64_t f = 0; f < p.F; ++f) buf[f] = feature_maps::elu_plus_one(x[f]);
}

// d phi / dx of one token into buf: 1, or for elu + 1, 1 where x > 0 and phi(x) elsewhere.
inline void slopes_into(const Problem& p, const float* __restrict x, const float* __restrict phi,
                        float* __restrict buf) {
  for (int64_t f = 0; f < p.F; ++f)
    buf[f] = p.map == KernelMap::None || x[f] > 0.0f ? 1.0f : phi[f];
}

// After the scan gave num_t = S_t^T q_t: z += k_t, out_t = num_t / (q_t . z + eps) (or num_t).
// Returns the denominator (0 when not normalising). The parallel forward and the recurrent
// step both run exactly scan + this, so the recurrent form reproduces the parallel one bit for
// bit.
inline float finish_token(int64_t F, int64_t Dv, const float* __restrict qt,
                          const float* __restrict kt, float* __restrict z,
                          const float* num, float* ot, float eps, bool normalize) {
  if (!normalize) {
    if (ot != num) std::copy(num, num + Dv, ot);
    return 0.0f;
  }
  for (int64_t f = 0; f < F; ++f) z[f] += kt[f];
  const float d = dot(qt, z, F) + eps;
  for (int64_t j = 0; j < Dv; ++j) ot[j] = num[j] / d;
  return d;
}

// One token of one (b, h): S += k_t v_t^T, z += k_t, out = S^T q_t / (q_t . z + eps).
inline float token_forward(int64_t F, int64_t Dv, const float* qt, const float* kt,
                           const float* vt, float* S, float* z, float* ot, float eps,
                           bool normalize) {
  scan(S, F, Dv, 1, false, kt, vt, qt, ot);
  return finish_token(F, Dv, qt, kt, z, ot, ot, eps, normalize);
}

// Tokens per block: a task gathers a block's rows (features, v, ...) into contiguous buffers,
// which stay in L1 while the scan makes its passes over them; the scratch does not grow with T.
constexpr int64_t kTokenBlock = 64;

// Per-thread scratch of at least n floats (grows, never shrinks: no allocation in the steady
// state). A kernel task runs start to end on one thread and starts no other task.
float* thread_scratch(int64_t n) {
  thread_local std::vector<float> buffer;
  if (static_cast<int64_t>(buffer.size()) < n) buffer.resize(static_cast<size_t>(n));
  return buffer.data();
}

// Forward of task n: writes its rows of out and den (T).
void forward_task(const Problem& p, int64_t n, float* out, float* den) {
  const int64_t F = p.F, Dv = p.Dv, Tb = std::clamp<int64_t>(p.T, 1, kTokenBlock);
  const TaskRows r = task_rows(p, n);
  float* S = thread_scratch(F * Dv + F + Tb * (2 * F + 2 * Dv));
  float *z = S + F * Dv, *qf = z + F, *kf = qf + Tb * F, *vb = kf + Tb * F, *num = vb + Tb * Dv;
  std::fill(S, S + F * Dv + F, 0.0f);  // S and z
  for (int64_t t0 = 0; t0 < p.T; t0 += Tb) {
    const int64_t nb = std::min(Tb, p.T - t0);
    for (int64_t i = 0; i < nb; ++i) {
      const int64_t t = t0 + i;
      prefetch_token(p, r, t + kPrefetchAhead);
      features_into(p, row(p.q, p.lq, r.q, t), qf + i * F);
      features_into(p, row(p.k, p.lk, r.k, t), kf + i * F);
      const float* vt = row(p.v, p.lv, r.v, t);
      std::copy(vt, vt + Dv, vb + i * Dv);
    }
    scan(S, F, Dv, nb, false, kf, vb, qf, num);
    for (int64_t i = 0; i < nb; ++i) {
      const float d = finish_token(F, Dv, qf + i * F, kf + i * F, z, num + i * Dv,
                                   row(out, p.lo, r.o, t0 + i), p.eps, p.normalize);
      if (p.normalize) den[n * p.T + t0 + i] = d;
    }
  }
}

// dnum_t (into dn, Dv) and dden_t for token t of task n (see the top of the file).
inline float dnum_dden(const Problem& p, const TaskRows& r, const float* g, const float* out,
                       const float* den, int64_t n, int64_t t, float* __restrict dn) {
  const float* gt = row(g, p.lo, r.o, t);
  if (!p.normalize) {
    std::copy(gt, gt + p.Dv, dn);
    return 0.0f;
  }
  const float d = den[n * p.T + t];
  for (int64_t j = 0; j < p.Dv; ++j) dn[j] = gt[j] / d;
  return -dot(gt, row(out, p.lo, r.o, t), p.Dv) / d;
}

// Backward of task n: dq += (1) by a forward sweep, dk, dv += (2) by a reverse sweep, both a
// block of tokens at a time. Any of dq, dk, dv may be null (no gradient wanted). dq and dk are
// gradients of the kernel's inputs: with a fused map, the features' gradients times its slopes.
void backward_task(const Problem& p, int64_t n, const float* g, const float* out, const float* den,
                   float* dq, float* dk, float* dv) {
  const int64_t T = p.T, F = p.F, Dv = p.Dv, Tb = std::clamp<int64_t>(T, 1, kTokenBlock);
  const TaskRows r = task_rows(p, n);
  // M: S^T (Dv x F), then U (F x Dv); Mt: U^T (Dv x F); m: z, then w (F); per token of a block:
  // qf, kf (features), sl (slopes), vb (v), dn (dnum), dden, acc (the scan's output).
  float* M = thread_scratch(2 * F * Dv + F + Tb * (3 * F + 2 * Dv + 1 + std::max(F, Dv)));
  float *Mt = M + F * Dv, *m = Mt + F * Dv, *qf = m + F, *kf = qf + Tb * F, *sl = kf + Tb * F;
  float *vb = sl + Tb * F, *dn = vb + Tb * Dv, *dden = dn + Tb * Dv, *acc = dden + Tb;
  // Gathers token t0 + i's features, v, dnum, dden and (for dq: q's, for dk: k's) slopes, in
  // the sweep's direction, asking for the rows some tokens ahead in that direction.
  auto gather = [&](int64_t t0, int64_t nb, bool q_slopes, bool k_slopes, bool reverse) {
    for (int64_t s = 0; s < nb; ++s) {
      const int64_t i = reverse ? nb - 1 - s : s, t = t0 + i;
      if (reverse)
        prefetch_token(p, r, t - kPrefetchAhead, g, out, nullptr, dk, dv);
      else
        prefetch_token(p, r, t + kPrefetchAhead, g, out, dq);
      const float *qraw = row(p.q, p.lq, r.q, t), *kraw = row(p.k, p.lk, r.k, t);
      features_into(p, qraw, qf + i * F);
      features_into(p, kraw, kf + i * F);
      if (q_slopes) slopes_into(p, qraw, qf + i * F, sl + i * F);
      if (k_slopes) slopes_into(p, kraw, kf + i * F, sl + i * F);
      const float* vt = row(p.v, p.lv, r.v, t);
      std::copy(vt, vt + Dv, vb + i * Dv);
      dden[i] = dnum_dden(p, r, g, out, den, n, t, dn + i * Dv);
    }
  };

  if (dq) {  // (1): rebuild S_t (stored transposed, Dv x F), z_t; dq_t += S_t dnum_t + z_t dden_t
    std::fill(M, M + F * Dv, 0.0f);
    std::fill(m, m + F, 0.0f);
    for (int64_t t0 = 0; t0 < T; t0 += Tb) {
      const int64_t nb = std::min(Tb, T - t0);
      gather(t0, nb, true, false, false);
      // S^T += v_t k_t^T and acc_t = S_t dnum_t: sum_j dnum_t[j] S^T[j, :], j ascending.
      scan(M, Dv, F, nb, false, vb, kf, dn, acc);
      for (int64_t i = 0; i < nb; ++i) {
        const float *kt = kf + i * F, *at = acc + i * F, *st = sl + i * F;
        float* __restrict dqt = row(dq, p.lq, r.q, t0 + i);
        for (int64_t f = 0; f < F; ++f) {
          m[f] += kt[f];
          dqt[f] += (at[f] + m[f] * dden[i]) * st[f];
        }
      }
    }
  }

  if (dk || dv) {  // (2): U_s, w_s as suffix sums; dk_s += U_s v_s + w_s, dv_s += U_s^T k_s
    std::fill(M, M + 2 * F * Dv + F, 0.0f);  // U, U^T and w
    const int64_t blocks = (T + Tb - 1) / Tb;
    for (int64_t blk = blocks - 1; blk >= 0; --blk) {
      const int64_t t0 = blk * Tb, nb = std::min(Tb, T - t0);
      gather(t0, nb, false, dk != nullptr, true);
      if (dv) {  // U += q_t dnum_t^T and acc_t = U^T k_t: sum_f k_t[f] U[f, :], f ascending
        scan(M, F, Dv, nb, true, qf, dn, kf, acc);
        for (int64_t i = 0; i < nb; ++i) {
          float* __restrict dvt = row(dv, p.lv, r.v, t0 + i);
          for (int64_t j = 0; j < Dv; ++j) dvt[j] += acc[i * Dv + j];
        }
      }
      if (dk) {  // U^T += dnum_t q_t^T and acc_t = U v_t: sum_j v_t[j] U^T[j, :], j ascending
        scan(Mt, Dv, F, nb, true, dn, qf, vb, acc);
        for (int64_t i = nb - 1; i >= 0; --i) {
          const float *qt = qf + i * F, *at = acc + i * F, *st = sl + i * F;
          float* __restrict dkt = row(dk, p.lk, r.k, t0 + i);
          for (int64_t f = 0; f < F; ++f) {
            m[f] += dden[i] * qt[f];
            dkt[f] += (at[f] + m[f]) * st[f];
          }
        }
      }
    }
  }
}

}  // namespace

namespace {

// One of the kernel's inputs: the Var holding it and where its first used element is.
struct Input {
  Var var;
  int64_t offset;
};

// Runs the fused kernel on p's shape and layouts; out_shape must match p.lo. Records one tape
// entry with `inputs` (the distinct Vars of q, k, v) as its parents.
Var run_causal(Problem p, const Input& q, const Input& k, const Input& v,
               std::initializer_list<Var> inputs, const Shape& out_shape) {
  Var out = tape().output(out_shape, inputs);

  float* den = p.normalize ? tape().alloc({p.BH, p.T}).data() : nullptr;  // saved for backward
  p.q = q.var.value().data() + q.offset;
  p.k = k.var.value().data() + k.offset;
  p.v = v.var.value().data() + v.offset;
  float* o = out.value().data();
  parallel_for(p.BH, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) forward_task(p, n, o, den);
  });

  // The inputs' values and `den` stay alive until the tape resets: p's pointers remain valid.
  record_backward(out, [=] {
    auto grad = [](const Input& in) {
      return in.var.requires_grad() ? in.var.grad_acc().data() + in.offset : nullptr;
    };
    float *dq = grad(q), *dk = grad(k), *dv = grad(v);
    if (!dq && !dk && !dv) return;
    const float* g = out.grad().data();
    const float* ov = out.value().data();
    parallel_for(p.BH, 1, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) backward_task(p, n, g, ov, den, dq, dk, dv);
    });
  });
  return out;
}

}  // namespace

Var causal_linear_attention(const Var& phi_q, const Var& phi_k, const Var& v, float eps,
                            bool normalize, KernelMap map) {
  check_inputs("causal_linear_attention", phi_q, phi_k, v, eps, /*same_length=*/true);
  const Shape& qs = phi_q.shape();
  const int64_t H = qs[1], T = qs[2], F = qs[3], Dv = v.dim(3);
  const Layout lq = heads_layout(H, T, F), lv = heads_layout(H, T, Dv);
  Problem p{qs[0] * H, H, T, F, Dv, nullptr, nullptr, nullptr, lq, lq, lv, lv, normalize, eps, map};
  return run_causal(p, {phi_q, 0}, {phi_k, 0}, {v, 0}, {phi_q, phi_k, v}, {qs[0], H, T, Dv});
}

Var causal_linear_attention_packed(const Var& qkv, int64_t heads, int64_t F, int64_t Dv,
                                   int64_t q_col, int64_t k_col, int64_t v_col, float eps,
                                   bool normalize, KernelMap map) {
  const char* op = "causal_linear_attention_packed";
  NA_CHECK(qkv.defined() && qkv.rank() == 3, op, "qkv must be (B, T, columns), got ",
           qkv.defined() ? qkv.shape() : Shape{});
  NA_CHECK(heads >= 1 && F >= 1 && Dv >= 1, op, "heads ", heads, ", F ", F, " and Dv ", Dv,
           " must be >= 1");
  const int64_t B = qkv.dim(0), T = qkv.dim(1), W = qkv.dim(2);
  for (auto [name, col, width] : {std::tuple{"q", q_col, F}, {"k", k_col, F}, {"v", v_col, Dv}})
    NA_CHECK(col >= 0 && col + heads * width <= W, op, name, " at columns [", col, ", ",
             col + heads * width, ") does not fit in qkv ", qkv.shape());
  NA_CHECK(std::isfinite(eps) && eps >= 0.0f, op, "eps must be finite and >= 0, got ", eps);
  const Layout lqk = packed_layout(T, W, F), lv = packed_layout(T, W, Dv);
  Problem p{B * heads, heads, T, F, Dv, nullptr, nullptr, nullptr, lqk, lqk, lv,
            packed_layout(T, heads * Dv, Dv), normalize, eps, map};
  return run_causal(p, {qkv, q_col}, {qkv, k_col}, {qkv, v_col}, {qkv}, {B, T, heads * Dv});
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
