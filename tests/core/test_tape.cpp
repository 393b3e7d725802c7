#include <doctest/doctest.h>

#include "nanoattn/ops.h"

using namespace na;

TEST_CASE("tape: gradients accumulate across two uses of a value") {
  Parameter w("w", Tensor::from({2}, {3, 4}));
  Var y = add(mul(w, w), w);  // dy/dw = 2w + 1
  tape().backward(sum_all(y));
  CHECK(w.grad().to_vector() == std::vector<float>{7, 9});
  tape().reset();
  // A second step without zero_grad adds on.
  tape().backward(sum_all(mul(w, w)));
  CHECK(w.grad().to_vector() == std::vector<float>{13, 17});
  w.zero_grad();
  CHECK(w.grad().to_vector() == std::vector<float>{0, 0});
  tape().reset();
}
