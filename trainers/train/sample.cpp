#include "train/sample.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "nanoattn/rng.h"
#include "nanoattn/stop.h"
#include "recurrent.h"

namespace na {

int32_t draw_token(const float* logits, int64_t V, double temperature, int64_t top_k, double u) {
  NA_CHECK(temperature > 0, "sample", "temperature must be > 0, got ", temperature);
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  // Largest first; ties by id so the order never depends on the sort's stability.
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  });
  const int64_t k = top_k > 0 && top_k < V ? top_k : V;
  std::vector<double> p(k);
  double total = 0;
  for (int64_t i = 0; i < k; ++i) total += p[i] = std::exp((logits[order[i]] - logits[order[0]]) / temperature);
  double acc = 0;
  for (int64_t i = 0; i < k; ++i)
    if ((acc += p[i] / total) > u) return order[i];
  return order[k - 1];
}

std::vector<int32_t> sample(const Model& model, const std::vector<int32_t>& prompt, const SampleOptions& opt,
                            const std::function<void(int32_t)>& on_token) {
  NA_CHECK(!prompt.empty(), "sample", "the prompt must hold at least one token");
  NoGrad no_grad;
  const int64_t V = model.dims().vocab, L = model.dims().max_len;
  std::vector<int32_t> text = prompt;
  std::unique_ptr<RecurrentState> state;
  std::vector<float> last(V);
  if (opt.mode == EvalMode::Recurrent) {
    state = opt.kv_cache ? model.begin_generation(1) : model.begin_recurrent(1);
    for (size_t i = 0; i + 1 < prompt.size(); ++i) {
      model.step(std::span<const int32_t>(&prompt[i], 1), *state);
      tape().reset();
    }
  }
  for (int64_t n = 0; n < opt.tokens; ++n) {
    check_stop("sampling");
    if (opt.mode == EvalMode::Recurrent) {
      Var logits = model.step(std::span<const int32_t>(&text.back(), 1), *state);
      std::copy(logits.value().data(), logits.value().data() + V, last.begin());
    } else {
      const int64_t len = std::min<int64_t>(L, static_cast<int64_t>(text.size()));
      Var logits = model.forward(std::span<const int32_t>(text.data() + text.size() - len, len), 1, len);
      std::copy(logits.value().data() + (len - 1) * V, logits.value().data() + len * V, last.begin());
    }
    tape().reset();
    const double u = uniform01(philox(opt.seed, static_cast<uint64_t>(n))[0]);
    const int32_t next = draw_token(last.data(), V, opt.temperature, opt.top_k, u);
    text.push_back(next);
    if (on_token) on_token(next);
  }
  return std::vector<int32_t>(text.begin() + prompt.size(), text.end());
}

}  // namespace na
