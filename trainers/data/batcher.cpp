#include "data/batcher.h"

#include <algorithm>

#include "nanoattn/error.h"
#include "nanoattn/rng.h"

namespace na {

Batch Batcher::next(int64_t B, int64_t T) {
  const std::vector<int32_t>& s = *stream_;
  NA_CHECK(B >= 1 && T >= 1, "batcher", "batch size B = ", B, " and context T = ", T, " must both be >= 1");
  NA_CHECK(s.size() >= static_cast<size_t>(T) + 1, "batcher", "the stream has ", s.size(),
           " tokens, fewer than T + 1 = ", T + 1, "; use a shorter context or a larger split");
  Batch batch{B, T, std::vector<int32_t>(B * T), std::vector<int32_t>(B * T), std::vector<size_t>(B)};
  // Random: any offset in [0, size - T). Aligned: the full eval windows, k T for k < (size - 1) / T.
  const bool aligned = windows_ == Windows::Aligned;
  const uint64_t choices = aligned ? (s.size() - 1) / static_cast<uint64_t>(T) : s.size() - static_cast<uint64_t>(T);
  const uint64_t key = Rng::mix(seed_, cursor_);
  for (int64_t b = 0; b < B; ++b) {
    auto w = philox(key, static_cast<uint64_t>(b));
    uint64_t r = (static_cast<uint64_t>(w[0]) << 32) | w[1];
    const uint64_t pick = r % choices;  // bias < choices / 2^64: negligible
    const size_t off = static_cast<size_t>(aligned ? pick * static_cast<uint64_t>(T) : pick);
    batch.starts[b] = off;
    for (int64_t t = 0; t < T; ++t) {
      batch.inputs[b * T + t] = s[off + t];
      batch.targets[b * T + t] = s[off + t + 1];
    }
  }
  ++cursor_;
  return batch;
}

std::vector<EvalWindow> eval_windows(const std::vector<int32_t>& stream, int64_t T) {
  NA_CHECK(T >= 1, "eval_windows", "context T = ", T, " must be >= 1");
  std::vector<EvalWindow> out;
  const size_t n_targets = stream.size() > 0 ? stream.size() - 1 : 0;
  for (size_t start = 0; start < n_targets; start += static_cast<size_t>(T))
    out.push_back({start, std::min(static_cast<size_t>(T), n_targets - start)});
  return out;
}

}  // namespace na
