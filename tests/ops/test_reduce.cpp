// Reductions. Tolerances: the gradcheck defaults (see gradcheck.h); max gets inputs whose values
// are 0.1 apart, so the +-2h = 0.02 stencil never changes which element is the maximum.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "gradcheck.h"
#include "nanoattn/ops.h"

using namespace na;
using namespace na::testing;

namespace {

using Vec = std::vector<float>;

// A permutation of 0.1 * {0, ..., N-1} (N not a multiple of 7), centred on 0: distinct values
// with gaps of 0.1.
Tensor distinct_values(const Shape& s) {
  int64_t n = s.numel();
  REQUIRE(n % 7 != 0);
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < n; ++i) t[i] = 0.1f * static_cast<float>((i * 7) % n - n / 2);
  return t;
}

Tensor arange(const Shape& s) {
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < s.numel(); ++i) t[i] = static_cast<float>(i);
  return t;
}

// f on x gives the same bits (output and gradient) with 1 thread and with more, and matches
// `naive` (a double loop).
void check_large(const std::function<Var(const Var&)>& f, const Tensor& x, const Tensor& naive) {
  ThreadInvariance inv = thread_invariance([&](const std::vector<Var>& v) { return f(v[0]); }, {x});
  INFO(inv.report);
  CHECK(inv.ok);
  const Tensor& y1 = inv.output;
  REQUIRE(y1.shape() == naive.shape());
  double worst = 0;
  for (int64_t i = 0; i < naive.numel(); ++i)
    worst = std::max(worst, std::fabs(y1[i] - naive[i]) / (1.0 + std::fabs(naive[i])));
  CHECK(worst < 1e-6);
}

}  // namespace

TEST_CASE("sum, mean, max along an axis: values and shapes") {
  Var x = tape().leaf(Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6}));
  CHECK(sum(x, 0).shape() == Shape{3});
  CHECK(sum(x, 0).value().to_vector() == Vec{5, 7, 9});
  CHECK(sum(x, 1).value().to_vector() == Vec{6, 15});
  CHECK(sum(x, -1, true).shape() == Shape{2, 1});
  CHECK(sum(x, -1, true).value().to_vector() == Vec{6, 15});
  CHECK(mean(x, 0).value().to_vector() == Vec{2.5, 3.5, 4.5});
  CHECK(mean(x, -1).value().to_vector() == Vec{2, 5});
  CHECK(max(x, 0).value().to_vector() == Vec{4, 5, 6});
  CHECK(max(x, 1, true).shape() == Shape{2, 1});
  CHECK(max(x, 1, true).value().to_vector() == Vec{3, 6});

  // The middle axis of (2, 3, 2) = [[[0 1] [2 3] [4 5]] [[6 7] [8 9] [10 11]]].
  Var z = tape().leaf(arange({2, 3, 2}));
  CHECK(sum(z, 1).shape() == Shape{2, 2});
  CHECK(sum(z, 1).value().to_vector() == Vec{6, 9, 24, 27});
  CHECK(mean(z, -2, true).shape() == Shape{2, 1, 2});
  CHECK(mean(z, -2, true).value().to_vector() == Vec{2, 3, 8, 9});
  CHECK(max(z, 1).value().to_vector() == Vec{4, 5, 10, 11});
  CHECK(max(z, 0).value().to_vector() == Vec{6, 7, 8, 9, 10, 11});

  // Reducing the only axis gives a 0-d result, like PyTorch; sum_all always gives (1,).
  Var v = tape().leaf(Tensor::from({3}, {1, 2, 3}));
  CHECK(sum(v, 0).shape().rank() == 0);
  CHECK(sum(v, 0).value().item() == 6);
  CHECK(sum_all(x).shape() == Shape{1});
  CHECK(sum_all(x).value().item() == 21);
  CHECK(mean_all(x).value().item() == 3.5);
  tape().reset();
}

TEST_CASE("max: the gradient goes to the first maximum; NaN propagates") {
  Var x = tape().leaf(Tensor::from({2, 3}, {3, 1, 3, 2, 2, 0}), true);
  tape().backward(sum_all(max(x, 1)));
  CHECK(x.grad().to_vector() == Vec{1, 0, 0, 1, 0, 0});
  tape().reset();

  Var y = tape().leaf(Tensor::from({2, 2}, {1, 5, 1, 2}), true);
  tape().backward(sum_all(max(y, 0)));
  CHECK(y.grad().to_vector() == Vec{1, 1, 0, 0});
  tape().reset();

  float nan = std::numeric_limits<float>::quiet_NaN();
  Var n = tape().leaf(Tensor::from({4}, {1, nan, 3, nan}), true);
  Var m = max(n, 0);
  CHECK(std::isnan(m.value().item()));
  tape().backward(m);
  CHECK(n.grad().to_vector() == Vec{0, 1, 0, 0});  // to the first NaN
  tape().reset();
}

TEST_CASE("reductions: finite-difference gradients along every axis") {
  Shape s{2, 3, 4};
  for (int axis = -3; axis < 3; ++axis)
    for (bool keep : {false, true}) {
      CAPTURE(axis);
      CAPTURE(keep);
      CHECK_GRADIENTS([=](const std::vector<Var>& v) { return sum(v[0], axis, keep); },
                      {random_tensor(s, 1)});
      CHECK_GRADIENTS([=](const std::vector<Var>& v) { return mean(v[0], axis, keep); },
                      {random_tensor(s, 2)});
      CHECK_GRADIENTS([=](const std::vector<Var>& v) { return max(v[0], axis, keep); },
                      {distinct_values(s)});
    }
  CHECK_GRADIENTS([](const std::vector<Var>& v) { return sum_all(v[0]); }, {random_tensor(s, 3)});
  CHECK_GRADIENTS([](const std::vector<Var>& v) { return mean_all(v[0]); }, {random_tensor(s, 4)});
}

TEST_CASE("reductions: large inputs match a double loop and are bitwise equal for 1 or all threads") {
  // (3, 50, 130): 130 columns are three column blocks (64, 64, 2); 150 rows along the last axis.
  Shape s{3, 50, 130};
  Tensor x = random_tensor(s, 6);
  for (int axis = 0; axis < 3; ++axis) {
    CAPTURE(axis);
    int64_t outer = s.prod(0, axis), n = s[axis], inner = s.prod(axis + 1, 3);
    Shape os;
    for (int i = 0; i < 3; ++i)
      if (i != axis) os.push_back(s[i]);
    Tensor want_sum = Tensor::empty(os), want_max = Tensor::empty(os);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < inner; ++j) {
        double acc = 0, best = -1e30;
        for (int64_t k = 0; k < n; ++k) {
          double v = x[(o * n + k) * inner + j];
          acc += v;
          best = std::max(best, v);
        }
        want_sum[o * inner + j] = static_cast<float>(acc);
        want_max[o * inner + j] = static_cast<float>(best);
      }
    check_large([=](const Var& v) { return sum(v, axis); }, x, want_sum);
    check_large([=](const Var& v) { return max(v, axis); }, x, want_max);
  }
  // sum_all over ~1M elements: many fixed chunks combined in order.
  Tensor big = random_tensor({(1 << 20) + 3}, 7);
  double total = 0;
  for (int64_t i = 0; i < big.numel(); ++i) total += big[i];
  check_large([](const Var& v) { return sum_all(v); }, big, Tensor::from({1}, {static_cast<float>(total)}));
  check_large([](const Var& v) { return mean_all(v); }, big,
              Tensor::from({1}, {static_cast<float>(total / big.numel())}));
}

TEST_CASE("reductions: bad axes and empty max name the op and the shape") {
  Var x = tape().leaf(Tensor::zeros({2, 3}));
  CHECK_THROWS_WITH_AS(sum(x, 3), doctest::Contains("sum: axis 3 is out of range for shape (2, 3)"), Error);
  CHECK_THROWS_WITH_AS(mean(x, -3), doctest::Contains("mean: axis -3 is out of range for shape (2, 3)"), Error);
  CHECK_THROWS_WITH_AS(max(x, 2, true), doctest::Contains("max: axis 2 is out of range for shape (2, 3)"), Error);
  Var e = tape().leaf(Tensor::zeros({2, 0}));
  CHECK_THROWS_WITH_AS(max(e, 1), doctest::Contains("max: axis 1 of shape (2, 0) is empty"), Error);
  CHECK(sum(e, 1).value().to_vector() == Vec{0, 0});  // an empty sum is 0, as in PyTorch
  CHECK_THROWS_WITH_AS(sum_all(Var()), doctest::Contains("sum_all: input 'x' is undefined"), Error);
  tape().reset();
}
