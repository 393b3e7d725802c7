#include "nanoattn/rng.h"

#include <cmath>

#include "nanoattn/parallel.h"

namespace na {

std::array<uint32_t, 4> philox(uint64_t key, uint64_t counter) {
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t{0xD2511F53u} * c0, p1 = uint64_t{0xCD9E8D57u} * c2;
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {c0, c1, c2, c3};
}

uint64_t Rng::mix(uint64_t a, uint64_t b) {  // splitmix64 of a combined with b
  uint64_t z = a + 0x9E3779B97F4A7C15ull * (b + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void fill_uniform(const Tensor& t, uint64_t key, float lo, float hi) {
  float* p = t.data();
  parallel_for(t.numel(), 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      p[i] = lo + (hi - lo) * uniform01(philox(key, static_cast<uint64_t>(i) / 4)[i % 4]);
  });
}

void fill_normal(const Tensor& t, uint64_t key, float mean, float stddev) {
  float* p = t.data();
  parallel_for(t.numel(), 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      auto w = philox(key, static_cast<uint64_t>(i) / 2);
      int j = static_cast<int>(i % 2) * 2;
      // Box-Muller in double: u1 in (0, 1] so the log is finite.
      double u1 = (static_cast<double>(w[j]) + 1.0) / 4294967296.0;
      double u2 = static_cast<double>(w[j + 1]) / 4294967296.0;
      double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
      p[i] = mean + stddev * static_cast<float>(z);
    }
  });
}

}  // namespace na
