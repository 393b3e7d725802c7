// distill_loss: cross-entropy and the tempered KL to a teacher, fused into one op whose forward
// also leaves the gradient for its backward (definition in nanoattn/ops.h).
//
// Per row, with x the logits, p = softmax(x), t the target, tau the temperature, over C classes
// (the V tokens for a full teacher; the k teacher ids + "rest" for a top-k one):
//   z_c  = x_c for a token class, z_rest = log sum_{v not in ids} exp(x_v)   (student, coarsened)
//   A_c  = teacher log p_c,        A_rest = log(1 - sum_ids exp(A_c)), -inf when <= 0 (clamped)
//   s = softmax(z / tau), q = softmax(A / tau), KL = sum_{q_c > 0} q_c (log q_c - log s_c)
//   loss_row = alpha (lse(x) - x_t) + (1 - alpha) tau^2 KL
//   d loss_row / d x_v = alpha (p_v - [v == t]) + (1 - alpha) tau (s_c - q_c) dz_c/dx_v,
// where dz_c/dx_v = 1 for a token class and softmax of the rest's logits for the rest class.
// Everything goes through log-sum-exp (the student's rest never as 1 - sum, which cancels when
// the ids hold most of the mass; the teacher's rest through expm1 in double).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "nanoattn/ops.h"
#include "op_util.h"

namespace na {

namespace {

constexpr const char* kOp = "distill_loss";
constexpr int64_t kExpCost = 24;  // rough cost of one element (several exps), for parallel chunks
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// z[c] -= log sum_c exp(z[c]) (at least one z[c] finite).
void normalise_log(float* z, int64_t n) {
  const float m = *std::max_element(z, z + n);
  double sum = 0;
  for (int64_t c = 0; c < n; ++c) sum += std::exp(static_cast<double>(z[c]) - m);
  const float lse = m + static_cast<float>(std::log(sum));
  for (int64_t c = 0; c < n; ++c) z[c] -= lse;
}

// log(1 - sum_j exp(a_j)): the teacher's mass outside its k ids; -inf once the k hold it all
// (float rounding can make their sum reach 1).
float teacher_rest(const float* a, int64_t k) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < k; ++j) m = std::max(m, static_cast<double>(a[j]));
  if (m == -std::numeric_limits<double>::infinity()) return 0.0f;  // no mass in the ids: all in the rest
  double sum = 0;
  for (int64_t j = 0; j < k; ++j) sum += std::exp(a[j] - m);
  const double log_top = m + std::log(sum);
  return log_top < 0 ? static_cast<float>(std::log(-std::expm1(log_top))) : kNegInf;
}

// Checks the teacher's rows against the logits; marks each row's ids in `in_ids` (N, V) when
// given (top-k with a rest class).
void check_teacher(const TeacherRows& t, int64_t N, int64_t V, const Shape& s, uint8_t* in_ids) {
  const int64_t k = t.k, W = k == 0 ? V : k;
  NA_CHECK(k >= 0 && k <= V, kOp, "teacher top-k k = ", k, " must be in [0, V = ", V, "] (0: full log-probabilities)");
  NA_CHECK(static_cast<int64_t>(t.logprobs.size()) == N * W, kOp, "teacher log-probs have ", t.logprobs.size(),
           " values, expected ", N, " x ", W, k == 0 ? " (rows x V)" : " (rows x k)", " for logits ", s);
  NA_CHECK(static_cast<int64_t>(t.ids.size()) == (k == 0 ? 0 : N * k), kOp, "teacher ids have ", t.ids.size(),
           " values, expected ", k == 0 ? "none for a full teacher (k = 0)" : cat(N, " x ", k, " (rows x k)"));
  for (int64_t r = 0; r < N; ++r) {
    bool any_mass = false;
    for (int64_t j = 0; j < W; ++j) {
      const float a = t.logprobs[r * W + j];
      NA_CHECK(!std::isnan(a) && a != std::numeric_limits<float>::infinity(), kOp, "teacher row ", r, " column ", j,
               " holds the log-probability ", a, ": a teacher gives log-probabilities (<= 0, or -inf)");
      any_mass |= a > kNegInf;
    }
    NA_CHECK(any_mass || (k > 0 && k < V), kOp, "teacher row ", r, " has no probability mass (every log-probability "
             "is -inf)");
    if (k == 0) continue;
    for (int64_t j = 0; j < k; ++j) {
      const int32_t id = t.ids[r * k + j];
      NA_CHECK(id >= 0 && id < V, kOp, "teacher row ", r, " has id ", id, ", outside [0, ", V, ") for logits ", s);
      if (!in_ids) continue;
      NA_CHECK(!in_ids[r * V + id], kOp, "teacher row ", r, " lists id ", id, " twice: top-k ids must be distinct");
      in_ids[r * V + id] = 1;
    }
  }
  if (k > 0 && !in_ids) {  // k = V: the ids must be a permutation, checked without the marks
    std::vector<uint8_t> seen(static_cast<size_t>(V));
    for (int64_t r = 0; r < N; ++r) {
      std::fill(seen.begin(), seen.end(), 0);
      for (int64_t j = 0; j < k; ++j) {
        const int32_t id = t.ids[r * k + j];
        NA_CHECK(!seen[id], kOp, "teacher row ", r, " lists id ", id, " twice: top-k ids must be distinct");
        seen[id] = 1;
      }
    }
  }
}

}  // namespace

Var distill_loss(const Var& logits, std::span<const int32_t> targets, const TeacherRows& teacher, float alpha,
                 float temperature, DistillParts* parts) {
  NA_PROFILE_OP("distill_loss");
  detail::check_defined(kOp, logits, "logits");
  const Shape& s = logits.shape();
  NA_CHECK(s.rank() >= 1 && s[-1] > 0, kOp, "logits ", s, " need a non-empty last axis (V)");
  const int64_t V = s[-1], N = s.numel() / V;
  NA_CHECK(static_cast<int64_t>(targets.size()) == N, kOp, "got ", targets.size(), " targets for logits ", s,
           ", which have ", N, " rows: pass one target per row");
  NA_CHECK(alpha >= 0.0f && alpha <= 1.0f, kOp, "alpha must be in [0, 1], got ", alpha);
  NA_CHECK(temperature > 0.0f && std::isfinite(temperature), kOp, "temperature must be > 0, got ", temperature);
  NA_CHECK(N > 0, kOp, "logits ", s, " have no rows");
  const int64_t k = teacher.k;
  const bool full = k == 0, rest = k > 0 && k < V;
  const int64_t W = full ? V : k, C = full ? V : k + (rest ? 1 : 0);  // teacher columns, classes

  int32_t* tgt = tape().scratch<int32_t>(N);
  for (int64_t r = 0; r < N; ++r) {
    tgt[r] = targets[r];
    NA_CHECK(tgt[r] >= 0 && tgt[r] < V, kOp, "row ", r, " has target ", tgt[r], ", outside [0, ", V,
             ") for logits ", s);
  }
  uint8_t* in_ids = nullptr;
  if (rest) {
    in_ids = tape().scratch<uint8_t>(N * V);
    std::fill(in_ids, in_ids + N * V, uint8_t{0});
  }
  check_teacher(teacher, N, V, s, in_ids);

  Var out = tape().output({1}, {logits});
  const bool want_grad = out.requires_grad();
  // d loss_row / d x without the target's -alpha (added in the backward, as cross_entropy does,
  // so alpha = 1 matches it bit for bit).
  float* grad = want_grad ? tape().scratch<float>(N * V) : nullptr;
  float* log_s = tape().scratch<float>(N * C);  // tempered student log-probs over the classes
  float* log_q = tape().scratch<float>(N * C);  // tempered teacher log-probs
  float* row_loss = tape().scratch<float>(N);
  float* row_ce = tape().scratch<float>(N);
  double* row_kl = tape().scratch<double>(N);
  const float* x = logits.value().data();
  const float tau = temperature, c_kl = (1.0f - alpha) * tau;
  const double tau2 = static_cast<double>(tau) * tau;
  parallel_for(N, grain_for(kExpCost * V), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * V;
      // The cross-entropy part, computed exactly as cross_entropy does.
      const float m = *std::max_element(xr, xr + V);
      float sum_exp = 0.0f;
      for (int64_t v = 0; v < V; ++v) sum_exp += std::exp(xr[v] - m);
      const float logsum = std::log(sum_exp);
      row_ce[r] = logsum - (xr[tgt[r]] - m);
      float* g = grad ? grad + r * V : nullptr;
      if (g)
        for (int64_t v = 0; v < V; ++v) g[v] = alpha * std::exp(xr[v] - m - logsum);
      row_kl[r] = 0;
      if (alpha == 1.0f) {
        row_loss[r] = row_ce[r];
        continue;
      }
      const float* a = teacher.logprobs.data() + r * W;
      const int32_t* ids = full ? nullptr : teacher.ids.data() + r * k;
      const uint8_t* mark = rest ? in_ids + r * V : nullptr;
      float* ls = log_s + r * C;
      float* lq = log_q + r * C;
      float rest_lse = 0;  // z_rest
      for (int64_t c = 0; c < W; ++c) {
        ls[c] = (full ? xr[c] : xr[ids[c]]) / tau;
        lq[c] = a[c] / tau;
      }
      if (rest) {
        float mr = kNegInf;
        for (int64_t v = 0; v < V; ++v)
          if (!mark[v]) mr = std::max(mr, xr[v]);
        float se = 0.0f;
        for (int64_t v = 0; v < V; ++v)
          if (!mark[v]) se += std::exp(xr[v] - mr);
        rest_lse = mr + std::log(se);
        ls[k] = rest_lse / tau;
        lq[k] = teacher_rest(a, k) / tau;
      }
      normalise_log(ls, C);
      normalise_log(lq, C);
      double kl = 0;
      for (int64_t c = 0; c < C; ++c)
        if (lq[c] > kNegInf) kl += std::exp(static_cast<double>(lq[c])) * (static_cast<double>(lq[c]) - ls[c]);
      row_kl[r] = kl;
      row_loss[r] = alpha * row_ce[r] + static_cast<float>((1.0 - alpha) * tau2 * kl);
      if (!g) continue;
      for (int64_t c = 0; c < W; ++c) g[full ? c : ids[c]] += c_kl * (std::exp(ls[c]) - std::exp(lq[c]));
      if (rest) {
        const float coef = c_kl * (std::exp(ls[k]) - std::exp(lq[k]));
        for (int64_t v = 0; v < V; ++v)
          if (!mark[v]) g[v] += coef * std::exp(xr[v] - rest_lse);
      }
    }
  });
  double total = 0, ce = 0, kl = 0;  // in row order: deterministic
  for (int64_t r = 0; r < N; ++r) total += row_loss[r], ce += row_ce[r], kl += row_kl[r];
  out.value()[0] = static_cast<float>(total / N);
  if (parts) *parts = {ce / N, kl / N};
  if (!want_grad) return out;
  record_backward(out, [=] {
    if (!logits.requires_grad()) return;
    const float scale = out.grad()[0] / N;  // d mean / d row_loss, times the upstream gradient
    float* dx = logits.grad_acc().data();
    parallel_for(N, grain_for(2 * V), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        float* dr = dx + r * V;
        const float* g = grad + r * V;
        for (int64_t v = 0; v < V; ++v) dr[v] += scale * g[v];
        dr[tgt[r]] -= scale * alpha;
      }
    });
  });
  return out;
}

}  // namespace na
