#include "train/evaluate.h"

#include <chrono>

#include "data/batcher.h"
#include "nanoattn/stop.h"
#include "recurrent.h"

namespace na {
namespace {

// Logits (rows, V) -> log-probabilities written to `lp`, and each row's NLL of its target.
void score_rows(const Tensor& logits, std::span<const int32_t> targets, float* lp, float* nll) {
  NoGrad no_grad;
  Var l = log_softmax(tape().leaf(logits));
  const int64_t V = logits.shape()[logits.rank() - 1];
  const float* src = l.value().data();
  std::copy(src, src + logits.numel(), lp);
  for (size_t r = 0; r < targets.size(); ++r) nll[r] = -lp[r * V + targets[r]];
}

}  // namespace

EvalResult evaluate(const Model& model, const std::vector<int32_t>& stream, int64_t T, int64_t B,
                    EvalMode mode, const EvalSink& sink) {
  NA_CHECK(T >= 1 && B >= 1, "evaluate", "window length ", T, " and batch ", B, " must be >= 1");
  const auto start = std::chrono::steady_clock::now();
  NoGrad no_grad;
  const int64_t V = model.dims().vocab;
  check_fits_in_memory(4.0 * 3 * static_cast<double>(B) * static_cast<double>(T) * static_cast<double>(V), "evaluate",
                       cat("evaluating ", B, " windows of ", T, " tokens at once (the logits and log-probabilities of ",
                           "every token over ", V, " symbols)"),
                       "lower eval.batch_size (or eval --batch-size)");
  const std::vector<EvalWindow> windows = eval_windows(stream, T);
  std::vector<int32_t> inputs, targets, positions, step_ids;
  std::vector<float> lp, nll;
  EvalResult result;
  for (size_t w = 0; w < windows.size();) {
    check_stop("evaluating");
    // A group: up to B consecutive windows of the same length (only the last may be shorter).
    const int64_t len = static_cast<int64_t>(windows[w].length);
    size_t end = w;
    while (end < windows.size() && end - w < static_cast<size_t>(B) && windows[end].length == windows[w].length)
      ++end;
    const int64_t b = static_cast<int64_t>(end - w), rows = b * len;
    inputs.resize(rows);
    targets.resize(rows);
    positions.resize(rows);
    for (int64_t j = 0; j < b; ++j)
      for (int64_t t = 0; t < len; ++t) {
        const size_t at = windows[w + j].start + t;
        inputs[j * len + t] = stream[at];
        targets[j * len + t] = stream[at + 1];
        positions[j * len + t] = static_cast<int32_t>(t);
      }
    lp.resize(rows * V);
    nll.resize(rows);
    if (mode == EvalMode::Parallel) {
      Var logits = model.forward(inputs, b, len);
      score_rows(logits.value(), targets, lp.data(), nll.data());
      tape().reset();
    } else {
      std::unique_ptr<RecurrentState> state = model.begin_recurrent(b);
      std::vector<float> lp_t(b * V), nll_t(b);
      std::vector<int32_t> targets_t(b);
      step_ids.resize(b);
      for (int64_t t = 0; t < len; ++t) {
        for (int64_t j = 0; j < b; ++j) {
          step_ids[j] = inputs[j * len + t];
          targets_t[j] = targets[j * len + t];
        }
        Var logits = model.step(step_ids, *state);
        score_rows(logits.value(), targets_t, lp_t.data(), nll_t.data());
        tape().reset();
        for (int64_t j = 0; j < b; ++j) {
          std::copy(lp_t.begin() + j * V, lp_t.begin() + (j + 1) * V, lp.begin() + (j * len + t) * V);
          nll[j * len + t] = nll_t[j];
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r) result.nll += nll[r];
    result.tokens += rows;
    if (sink) sink(EvalRows{inputs, targets, positions, lp.data(), nll, V});
    w = end;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace na
