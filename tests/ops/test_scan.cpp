// cumsum. Tolerances: the gradcheck defaults (see gradcheck.h).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "gradcheck.h"
#include "nanoattn/ops.h"

using namespace na;
using namespace na::testing;

using Vec = std::vector<float>;

TEST_CASE("cumsum: values along each axis") {
  Var x = tape().leaf(Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6}));
  CHECK(cumsum(x, 1).shape() == Shape{2, 3});
  CHECK(cumsum(x, 1).value().to_vector() == Vec{1, 3, 6, 4, 9, 15});
  CHECK(cumsum(x, -1).value().to_vector() == Vec{1, 3, 6, 4, 9, 15});
  CHECK(cumsum(x, 0).value().to_vector() == Vec{1, 2, 3, 5, 7, 9});
  // The middle (time) axis of (2, 3, 2) = [[[0 1] [2 3] [4 5]] [[6 7] [8 9] [10 11]]].
  Tensor t = Tensor::empty({2, 3, 2});
  for (int i = 0; i < 12; ++i) t[i] = static_cast<float>(i);
  CHECK(cumsum(tape().leaf(t), 1).value().to_vector() == Vec{0, 1, 2, 4, 6, 9, 6, 7, 14, 16, 24, 27});
  tape().reset();
}

TEST_CASE("cumsum: backward is the reverse prefix sum") {
  Var x = tape().leaf(Tensor::from({1, 4}, {5, -1, 2, 7}), true);
  tape().backward(cumsum(x, 1), Tensor::from({1, 4}, {1, 10, 100, 1000}));
  CHECK(x.grad().to_vector() == Vec{1111, 1110, 1100, 1000});
  tape().reset();
}

TEST_CASE("cumsum: finite-difference gradients along every axis") {
  for (int axis = -3; axis < 3; ++axis) {
    CAPTURE(axis);
    CHECK_GRADIENTS([=](const std::vector<Var>& v) { return cumsum(v[0], axis); },
                    {random_tensor({2, 3, 4}, 1 + axis + 3)});
  }
  CHECK_GRADIENTS([](const std::vector<Var>& v) { return cumsum(v[0], 0); }, {random_tensor({7}, 9)});
}

TEST_CASE("cumsum: long sequences match a double loop and are bitwise equal for 1 or all threads") {
  // (2, 300, 70): 70 columns are two column blocks (64, 6).
  Shape s{2, 300, 70};
  Tensor x = random_tensor(s, 3), seed = random_tensor(s, 4);
  for (int axis = 0; axis < 3; ++axis) {
    CAPTURE(axis);
    Tensor runs[2], grads[2];
    for (int threads : {1, 0}) {
      set_num_threads(threads);
      Var v = tape().leaf(x, true);
      Var y = cumsum(v, axis);
      tape().backward(y, seed);
      runs[threads ? 0 : 1] = y.value().clone();
      grads[threads ? 0 : 1] = v.grad().clone();
      tape().reset();
    }
    set_num_threads(0);
    CHECK(std::memcmp(runs[0].data(), runs[1].data(), x.numel() * sizeof(float)) == 0);
    CHECK(std::memcmp(grads[0].data(), grads[1].data(), x.numel() * sizeof(float)) == 0);
    // Naive prefix sums in double.
    int64_t outer = s.prod(0, axis), n = s[axis], inner = s.prod(axis + 1, 3);
    double worst = 0;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < inner; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < n; ++k) {
          int64_t i = (o * n + k) * inner + j;
          acc += x[i];
          worst = std::max(worst, std::fabs(runs[0][i] - acc) / (1.0 + std::fabs(acc)));
        }
      }
    CHECK(worst < 1e-6);
  }
}

TEST_CASE("cumsum: a bad axis names the op and the shape") {
  Var x = tape().leaf(Tensor::zeros({2, 3}));
  CHECK_THROWS_WITH_AS(cumsum(x, 2), doctest::Contains("cumsum: axis 2 is out of range for shape (2, 3)"), Error);
  CHECK_THROWS_WITH_AS(cumsum(x, -3), doctest::Contains("cumsum: axis -3 is out of range for shape (2, 3)"), Error);
  CHECK_THROWS_WITH_AS(cumsum(Var(), 0), doctest::Contains("cumsum: input 'x' is undefined"), Error);
  tape().reset();
}
