// Dropout. Tolerances: the gradcheck defaults (see gradcheck.h); with a fixed key dropout is
// linear in x, so the finite differences are exact up to float noise.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "gradcheck.h"
#include "nanoattn/ops.h"

using namespace na;
using namespace na::testing;

namespace {
bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.numel() * sizeof(float)) == 0;
}
}  // namespace

TEST_CASE("dropout: p = 0 is the identity") {
  Tensor t = random_tensor({4, 5}, 1);
  Var x = tape().leaf(t, true);
  Var y = dropout(x, 0.0f, 42);
  CHECK(same_bits(y.value(), t));
  Tensor seed = random_tensor({4, 5}, 2);
  tape().backward(y, seed);
  CHECK(same_bits(x.grad(), seed));
  tape().reset();
}

TEST_CASE("dropout: the mask follows the Philox rule, about 1-p is kept, scaled by 1/(1-p)") {
  const float p = 0.3f;
  const uint64_t key = 1234;
  Tensor t = random_away_from_zero({1 << 20}, 3);  // no zeros, so kept == nonzero
  Var y = dropout(tape().leaf(t), p, key);
  const float scale = 1.0f / (1.0f - p);
  int64_t kept = 0, wrong = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    bool keep = uniform01(philox(key, static_cast<uint64_t>(i) / 4)[i % 4]) >= p;
    kept += keep;
    wrong += y.value()[i] != (keep ? t[i] * scale : 0.0f);
  }
  CHECK(wrong == 0);
  // Binomial: the standard deviation of the kept fraction is sqrt(p (1-p) / n) = 4.5e-4.
  CHECK(std::fabs(static_cast<double>(kept) / t.numel() - (1.0 - p)) < 5e-3);
  tape().reset();
}

TEST_CASE("dropout: same key => same bits (any thread count), different key => different mask") {
  Tensor t = random_away_from_zero({3, 100000}, 4);
  auto run = [&](uint64_t key) {
    Tensor y = dropout(tape().leaf(t), 0.5f, key).value().clone();
    tape().reset();
    return y;
  };
  Tensor a = run(7), b = run(7), d = run(8);
  CHECK(same_bits(a, b));
  // 1 thread vs more: the same mask, so the same output bits and the same gradient bits.
  CHECK_THREAD_INVARIANT([](const std::vector<Var>& v) { return dropout(v[0], 0.5f, 7); }, {t});
  int64_t differ = 0;
  for (int64_t i = 0; i < t.numel(); ++i) differ += (a[i] == 0) != (d[i] == 0);
  CHECK(differ > t.numel() / 4);  // independent masks differ in half the places
}

TEST_CASE("dropout: backward applies the forward's mask; NoGrad records nothing") {
  Var x = tape().leaf(Tensor::full({1000}, 1.0f), true);
  Var y = dropout(x, 0.25f, 99);
  tape().backward(y, Tensor::full({1000}, 1.0f));
  CHECK(same_bits(x.grad(), y.value()));  // x = 1: both are mask / (1 - p)
  tape().reset();
  {
    NoGrad no_grad;
    dropout(tape().leaf(Tensor::full({10}, 1.0f), true), 0.5f, 1);
    CHECK(tape().entry_count() == 0);
  }
  tape().reset();
}

TEST_CASE("dropout: finite-difference gradients with a fixed key") {
  Tensor t = random_tensor({3, 7}, 5);
  // The key must drop some elements and keep others, or the check proves little.
  Var y = dropout(tape().leaf(t), 0.4f, 2024);
  int64_t zeros = 0;
  for (int64_t i = 0; i < t.numel(); ++i) zeros += y.value()[i] == 0.0f;
  CHECK(zeros > 0);
  CHECK(zeros < t.numel());
  tape().reset();
  CHECK_GRADIENTS([](const std::vector<Var>& v) { return dropout(v[0], 0.4f, 2024); }, {t});
}

TEST_CASE("dropout: p outside [0, 1) names the op, p and the shape") {
  Var x = tape().leaf(Tensor::zeros({2, 3}));
  CHECK_THROWS_WITH_AS(dropout(x, 1.0f, 0), doctest::Contains("dropout: p = 1 for x (2, 3) must be in [0, 1)"), Error);
  CHECK_THROWS_WITH_AS(dropout(x, -0.1f, 0), doctest::Contains("dropout: p = -0.1 for x (2, 3)"), Error);
  CHECK_THROWS_WITH_AS(dropout(x, std::numeric_limits<float>::quiet_NaN(), 0),
                       doctest::Contains("dropout: p = nan"), Error);
  CHECK_THROWS_WITH_AS(dropout(Var(), 0.5f, 0), doctest::Contains("dropout: input 'x' is undefined"), Error);
  tape().reset();
}
