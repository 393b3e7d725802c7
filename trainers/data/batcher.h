// Deterministic batching over a token stream, and the held-out stream cut for evaluation.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace na {

struct Batch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> inputs;   // (B, T) row-major
  std::vector<int32_t> targets;  // (B, T): targets[b, t] = the token after inputs[b, t]
  std::vector<size_t> starts;    // (B,): row b's inputs are stream[starts[b], starts[b] + T)
};

// How training windows are placed: anywhere in the stream, or exactly on eval_windows(stream,
// T)'s full windows (a teacher dump of the split holds those windows' predictions).
enum class Windows { Random, Aligned };

// Random windows of T + 1 tokens. Batch number c (the cursor) draws row b's offset from
// philox(Rng::mix(seed, c), b), so the batches depend only on (seed, cursor): saving cursor()
// in a checkpoint and calling set_cursor() on resume gives bitwise the same next batches.
// Windows::Aligned draws a window index w the same way instead, among the full windows of
// eval_windows(stream, T), and starts the row at w T.
// Holds a pointer to the stream: the stream must outlive the Batcher (no 400 MB copies).
class Batcher {
 public:
  Batcher(const std::vector<int32_t>& stream, uint64_t seed, uint64_t cursor = 0, Windows windows = Windows::Random)
      : stream_(&stream), seed_(seed), cursor_(cursor), windows_(windows) {}

  // Throws na::Error if B < 1, T < 1 or the stream has fewer than T + 1 tokens.
  Batch next(int64_t B, int64_t T);

  uint64_t cursor() const { return cursor_; }  // batches drawn so far
  void set_cursor(uint64_t c) { cursor_ = c; }
  uint64_t seed() const { return seed_; }

 private:
  const std::vector<int32_t>* stream_;
  uint64_t seed_, cursor_;
  Windows windows_;
};

// One evaluation window: inputs stream[start, start + length), targets
// stream[start + 1, start + 1 + length); 1 <= length <= T.
struct EvalWindow {
  size_t start = 0;
  size_t length = 0;
};

// The whole held-out stream in order: window k starts at k*T and predicts the next T tokens,
// so the target ranges never overlap (consecutive windows share one boundary token, the last
// target of one being the first input of the next) and the last window is partial. Every token
// except stream[0] is predicted exactly once. Empty when the stream has fewer than 2 tokens.
std::vector<EvalWindow> eval_windows(const std::vector<int32_t>& stream, int64_t T);

}  // namespace na
