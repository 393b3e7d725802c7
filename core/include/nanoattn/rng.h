// Counter-based random numbers (Philox-4x32-10). A value depends only on (key, counter), so
// kernels draw in parallel and reproduce bitwise for any thread count. Distributions are our
// own, never std:: ones (those differ between standard libraries).
#pragma once
#include <array>
#include <cstdint>

#include "nanoattn/tensor.h"

namespace na {

// Four 32-bit random words for (key, counter).
std::array<uint32_t, 4> philox(uint64_t key, uint64_t counter);

// Uniform in [0, 1) with 24 random bits.
inline float uniform01(uint32_t bits) { return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f); }

// A stream of keys: every op call that needs randomness takes the next key, so a run with the
// same seed makes the same draws in the same order.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : seed_(seed) {}
  uint64_t next_key() { return mix(seed_, calls_++); }
  uint64_t seed() const { return seed_; }
  uint64_t calls() const { return calls_; }  // with seed(), the whole state (for checkpoints)
  void restore(uint64_t seed, uint64_t calls) { seed_ = seed, calls_ = calls; }
  static uint64_t mix(uint64_t a, uint64_t b);

 private:
  uint64_t seed_;
  uint64_t calls_ = 0;
};

// Fill a tensor from key: element i uses counter i / 4, word i % 4 (parallel, deterministic).
void fill_uniform(const Tensor& t, uint64_t key, float lo, float hi);
void fill_normal(const Tensor& t, uint64_t key, float mean, float stddev);

}  // namespace na
