// Evaluation over a whole held-out stream: the exact NLL of every token (bits per character at
// char level, bits per word at word level), in parallel windows or token by token through the
// model's RNN form.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model.h"

namespace na {

struct EvalResult {
  double nll = 0;       // summed, nats
  int64_t tokens = 0;   // predicted tokens
  double seconds = 0;
  double bits_per_token() const { return tokens ? nll / tokens / std::log(2.0) : NAN; }
  double perplexity() const { return tokens ? std::exp(nll / tokens) : NAN; }
};

// A block of evaluated tokens, in stream order, for prediction dumps.
struct EvalRows {
  std::span<const int32_t> inputs, targets;
  std::span<const int32_t> positions;  // position of each input in its context window
  const float* logprobs = nullptr;     // (rows, V) log-probabilities, row-major
  std::span<const float> nll;          // -logprobs[row, target]
  int64_t V = 0;
};
using EvalSink = std::function<void(const EvalRows&)>;

enum class EvalMode { Parallel, Recurrent };

// Predicts every token of `stream` except the first (windows of T, see eval_windows), B windows
// per forward. Recurrent mode starts a fresh RNN state per window and steps it token by token,
// so both modes see the same contexts and must agree. The sum runs in a fixed order: the same
// bits for any thread count. `sink` (optional) receives every token's distribution in order.
EvalResult evaluate(const Model& model, const std::vector<int32_t>& stream, int64_t T, int64_t B,
                    EvalMode mode = EvalMode::Parallel, const EvalSink& sink = nullptr);

}  // namespace na
