// gelu_linear: linear(gelu(h), w, b) with gelu(h) recomputed in the backward. Checked against
// the composite it replaces (relative to the largest |value|, tight: a dropped GELU slope or a
// chunk written to the wrong rows moves gradients by O(1)) and by finite differences (gradcheck
// defaults, see gradcheck.h).
#include <doctest/doctest.h>

#include "gradcheck.h"
#include "nanoattn/ops.h"

using namespace na;
using namespace na::testing;

TEST_CASE("gelu_linear: equals linear(gelu(h)) in value and every gradient, in one or many chunks") {
  // 10 rows of 6: chunk sizes that divide the rows, leave a short last chunk, or take them all.
  const std::vector<Tensor> in = {random_tensor({2, 5, 6}, 1, -3, 3), random_tensor({4, 6}, 2),
                                  random_tensor({4}, 3)};
  auto composite = [](const std::vector<Var>& v) { return linear(gelu(v[0]), v[1], v[2]); };
  for (int64_t chunk : {0, 1, 3, 5, 10, 64}) {
    CAPTURE(chunk);
    auto fused = [chunk](const std::vector<Var>& v) { return gelu_linear(v[0], v[1], v[2], chunk); };
    Agreement d = compare(fused, composite, in);
    CHECK(d.out_rel < 1e-6);
    CHECK(d.grad_rel < 1e-5);
  }
  CHECK_GRADIENTS([](const std::vector<Var>& v) { return gelu_linear(v[0], v[1], v[2], 3); }, in);
  CHECK_GRADIENTS([](const std::vector<Var>& v) { return gelu_linear(v[0], v[1], Var(), 4); },
                  {random_tensor({7, 5}, 4, -2, 2), random_tensor({3, 5}, 5)});
}

TEST_CASE("gelu_linear: large chunks whose products are split over blocks") {
  // 600 rows in chunks of 256, 256 and 88: each chunk's product splits the output's 300
  // columns, its dW (300 x 200) splits rows. Sums of up to 600 terms: looser than above.
  const std::vector<Tensor> in = {random_tensor({600, 200}, 21, -3, 3),
                                  random_tensor({300, 200}, 22), random_tensor({300}, 23)};
  auto composite = [](const std::vector<Var>& v) { return linear(gelu(v[0]), v[1], v[2]); };
  for (int64_t chunk : {0, 256}) {
    CAPTURE(chunk);
    auto fused = [chunk](const std::vector<Var>& v) { return gelu_linear(v[0], v[1], v[2], chunk); };
    Agreement d = compare(fused, composite, in);
    CHECK(d.out_rel < 1e-4);
    CHECK(d.grad_rel < 1e-3);
    CHECK_THREAD_INVARIANT(fused, in);
  }
}

TEST_CASE("gelu_linear: adds to a gradient h already has") {
  // The linear(h, w2) term is recorded later, so its backward runs first and h's gradient
  // exists when gelu_linear's runs: the accumulate path, not the overwrite one.
  const std::vector<Tensor> in = {random_tensor({9, 6}, 6, -3, 3), random_tensor({4, 6}, 7),
                                  random_tensor({4}, 8), random_tensor({4, 6}, 9)};
  auto fused = [](const std::vector<Var>& v) { return add(gelu_linear(v[0], v[1], v[2], 4), linear(v[0], v[3])); };
  auto composite = [](const std::vector<Var>& v) { return add(linear(gelu(v[0]), v[1], v[2]), linear(v[0], v[3])); };
  Agreement d = compare(fused, composite, in);
  CHECK(d.out_rel < 1e-6);
  CHECK(d.grad_rel < 1e-5);
  CHECK_GRADIENTS(fused, in);
}

TEST_CASE("gelu_linear: shape errors name the op and the shapes") {
  Var h = tape().leaf(Tensor::zeros({2, 3}));
  CHECK_THROWS_WITH_AS(gelu_linear(h, tape().leaf(Tensor::zeros({4, 5}))),
                       doctest::Contains("gelu_linear: h (2, 3) and weight (4, 5) do not fit"), Error);
  CHECK_THROWS_WITH_AS(gelu_linear(h, tape().leaf(Tensor::zeros({4, 3})), tape().leaf(Tensor::zeros({3}))),
                       doctest::Contains("gelu_linear: bias (3,) must be (4,) for weight (4, 3)"), Error);
  CHECK_THROWS_WITH_AS(gelu_linear(h, tape().leaf(Tensor::zeros({4, 3})), Var(), -1),
                       doctest::Contains("chunk_rows must be >= 0"), Error);
  tape().reset();
}
