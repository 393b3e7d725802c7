// cross_entropy: log-softmax, picking the target, label smoothing and the mean over rows fused
// into one op, so no (N, V) log-probability tensor is made and the backward is one pass.
//
// Per counted row (target != ignore_index), with lse = log sum_v exp(x_v):
//   loss_row = (1 - ls) (lse - x_target) + ls (lse - mean_v x_v)      (PyTorch's smoothing)
//   d loss_row / d x_v = softmax_v - (1 - ls) [v == target] - ls / V
// The op returns the mean over counted rows. If every row is ignored the loss is defined as 0
// with a zero gradient (PyTorch returns nan there), so a fully padded batch does no harm.
#include <algorithm>
#include <cmath>

#include "nanoattn/ops.h"
#include "op_util.h"

namespace na {

namespace {

constexpr const char* kOp = "cross_entropy";
constexpr int64_t kExpCost = 8;  // rough cost of one element, for sizing parallel chunks

// Copies the targets (the span need not outlive this call, the backward needs them) into the
// tape's arena, checking each; returns the number of counted (not ignored) rows.
int64_t copy_targets(std::span<const int32_t> targets, int32_t ignore_index, const Shape& s,
                     int32_t* dst) {
  const int64_t V = s[-1];
  int64_t count = 0;
  for (size_t r = 0; r < targets.size(); ++r) {
    int32_t t = dst[r] = targets[r];
    if (t == ignore_index) continue;
    NA_CHECK(t >= 0 && t < V, kOp, "row ", r, " has target ", t, ", outside [0, ", V,
             ") for logits ", s, " (rows whose target is ignore_index = ", ignore_index,
             " are skipped)");
    ++count;
  }
  return count;
}

}  // namespace

// logits: (..., V)  targets: one per row (N = numel / V)  -> (1,)
Var cross_entropy(const Var& logits, std::span<const int32_t> targets, float label_smoothing,
                  int32_t ignore_index) {
  NA_PROFILE_OP("cross_entropy");
  detail::check_defined(kOp, logits, "logits");
  const Shape& s = logits.shape();
  NA_CHECK(s.rank() >= 1 && s[-1] > 0, kOp, "logits ", s, " need a non-empty last axis (V)");
  const int64_t V = s[-1], N = s.numel() / V;
  NA_CHECK(static_cast<int64_t>(targets.size()) == N, kOp, "got ", targets.size(),
           " targets for logits ", s, ", which have ", N, " rows: pass one target per row");
  NA_CHECK(label_smoothing >= 0.0f && label_smoothing <= 1.0f, kOp,
           "label_smoothing must be in [0, 1], got ", label_smoothing);
  const float ls = label_smoothing;

  int32_t* tgt = tape().scratch<int32_t>(N);
  const int64_t count = copy_targets(targets, ignore_index, s, tgt);
  // Per row, saved for the backward's softmax: the max m and log sum exp(x - m). Kept apart
  // (not as lse = m + log sum) so large logits lose no precision to rounding of lse.
  float* row_max = tape().scratch<float>(N);
  float* row_logsum = tape().scratch<float>(N);
  float* row_loss = tape().scratch<float>(N);  // summed in row order below: deterministic
  const float* x = logits.value().data();
  parallel_for(N, grain_for(kExpCost * V), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      row_loss[r] = 0.0f;
      if (tgt[r] == ignore_index) continue;
      const float* xr = x + r * V;
      const float m = *std::max_element(xr, xr + V);
      float sum_exp = 0.0f, sum_d = 0.0f;
      for (int64_t v = 0; v < V; ++v) sum_exp += std::exp(xr[v] - m), sum_d += xr[v] - m;
      const float logsum = std::log(sum_exp);  // lse - m
      row_max[r] = m;
      row_logsum[r] = logsum;
      row_loss[r] = (1.0f - ls) * (logsum - (xr[tgt[r]] - m)) + ls * (logsum - sum_d / V);
    }
  });
  double total = 0.0;
  for (int64_t r = 0; r < N; ++r) total += row_loss[r];

  Var out = tape().output({1}, {logits});
  out.value()[0] = count ? static_cast<float>(total / count) : 0.0f;
  record_backward(out, [=] {
    if (!logits.requires_grad() || count == 0) return;
    const float k = out.grad()[0] / count;  // d mean / d row_loss, times the upstream gradient
    const float* x = logits.value().data();
    float* dx = logits.grad_acc().data();
    parallel_for(N, grain_for(kExpCost * V), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        if (tgt[r] == ignore_index) continue;
        const float* xr = x + r * V;
        float* dr = dx + r * V;
        for (int64_t v = 0; v < V; ++v)
          dr[v] += k * (std::exp(xr[v] - row_max[r] - row_logsum[r]) - ls / V);
        dr[tgt[r]] -= k * (1.0f - ls);
      }
    });
  });
  return out;
}

}  // namespace na
