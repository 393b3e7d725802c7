// Text generation from a trained model: in parallel form (re-running the last max_len tokens
// for each new one), as an RNN (one step per token, constant memory), or cached (one step per
// token with RNN states or attention KV caches, e.g. softmax's).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "model.h"
#include "train/evaluate.h"

namespace na {

struct SampleOptions {
  int64_t tokens = 200;      // new tokens
  double temperature = 1.0;  // > 0
  int64_t top_k = 0;         // 0 = the whole vocabulary
  uint64_t seed = 1;         // draw i uses philox(seed, i): the same text for the same seed
  EvalMode mode = EvalMode::Parallel;
  // With mode Recurrent: also accept attentions whose state is a KV cache (it grows with the
  // tokens; Model::begin_generation). Same tokens as Parallel while the text fits in max_len.
  bool kv_cache = false;
};

// Continues `prompt` (at least one token); calls on_token with each new token as it is drawn.
std::vector<int32_t> sample(const Model& model, const std::vector<int32_t>& prompt, const SampleOptions& opt,
                            const std::function<void(int32_t)>& on_token = nullptr);

// One draw from softmax(logits / temperature) restricted to the top_k largest logits, using the
// uniform number u in [0, 1).
int32_t draw_token(const float* logits, int64_t V, double temperature, int64_t top_k, double u);

}  // namespace na
