// matmul and linear. Gradcheck defaults (see gradcheck.h): the products here are small, so
// the finite-difference noise is far below atol.
#include <doctest/doctest.h>

#include <cmath>

#include "gradcheck.h"
#include "nanoattn/ops.h"

using namespace na;
using namespace na::testing;

TEST_CASE("matmul: values") {
  Var a = tape().leaf(Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6}));
  Var b = tape().leaf(Tensor::from({3, 2}, {1, 0, 0, 1, 1, 1}));
  CHECK(matmul(a, b).value().to_vector() == std::vector<float>{4, 5, 10, 11});
  CHECK(matmul(a, a, false, true).value().to_vector() == std::vector<float>{14, 32, 32, 77});
  CHECK(matmul(a, a, true, false).shape() == Shape{3, 3});
  tape().reset();
}

TEST_CASE("matmul: gradients for every transpose combination, batched and shared-b") {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      Shape a = ta ? Shape{2, 4, 3} : Shape{2, 3, 4};  // op(A): (2, 3, 4)
      Shape b = tb ? Shape{2, 5, 4} : Shape{2, 4, 5};  // op(B): (2, 4, 5)
      auto f = [=](const std::vector<Var>& v) { return matmul(v[0], v[1], ta, tb); };
      CHECK_GRADIENTS(f, {random_tensor(a, 1), random_tensor(b, 2)});
      Shape b2 = tb ? Shape{5, 4} : Shape{4, 5};  // shared by both batches
      CHECK_GRADIENTS(f, {random_tensor(a, 3), random_tensor(b2, 4)});
    }
}

TEST_CASE("matmul: large products split over blocks agree with a naive loop") {
  // 300 x 200 x 100 is above the split threshold, so this exercises the TBB-blocked path.
  Tensor ta = random_tensor({300, 100}, 5), tb = random_tensor({100, 200}, 6);
  Var c = matmul(tape().leaf(ta), tape().leaf(tb));
  // A float32 dot product of n terms is off by at most n u sum |terms| (u = 2^-24), whatever
  // the order BLAS sums in; a dropped or wrong term moves it by ~ sum |terms| / n, far more.
  double worst = 0;
  for (int i = 0; i < 300; i += 7)
    for (int j = 0; j < 200; j += 3) {
      double s = 0, s_abs = 0;
      for (int k = 0; k < 100; ++k) {
        s += double(ta[i * 100 + k]) * tb[k * 200 + j];
        s_abs += std::fabs(double(ta[i * 100 + k]) * tb[k * 200 + j]);
      }
      worst = std::max(worst, std::fabs(s - c.value()[i * 200 + j]) / (100 * 0x1p-24 * s_abs));
    }
  CHECK(worst <= 1.0);  // the error as a fraction of the bound
  tape().reset();
}

TEST_CASE("linear: matches matmul + bias, and its gradients") {
  auto f = [](const std::vector<Var>& v) { return linear(v[0], v[1], v[2]); };
  auto g = [](const std::vector<Var>& v) { return add(matmul(v[0], v[1], false, true), v[2]); };
  std::vector<Tensor> in = {random_tensor({2, 3, 4}, 1), random_tensor({5, 4}, 2), random_tensor({5}, 3)};
  CHECK_GRADIENTS(f, in);
  Agreement d = compare(f, g, in);
  CHECK(d.out_rel < 1e-6);
  CHECK(d.grad_rel < 1e-5);
  CHECK_GRADIENTS([](const std::vector<Var>& v) { return linear(v[0], v[1]); },
                  {random_tensor({3, 4}, 4), random_tensor({2, 4}, 5)});
}

TEST_CASE("linear: products split over blocks of rows or of columns") {
  // Above the split threshold, the bias fills each block of the output and the bias gradient is
  // summed by the task that computes a block of dW. (300 x 100) . (200 x 100)^T splits rows;
  // (40 x 1000) . (64 x 1000)^T splits the output's columns and dW's (64 x 1000) columns.
  for (Shape ws : {Shape{200, 100}, Shape{64, 1000}}) {
    const int64_t out = ws[0], in = ws[1], rows = out == 200 ? 300 : 40;
    CAPTURE(ws);
    const std::vector<Tensor> args = {random_tensor({rows, in}, 11), random_tensor(ws, 12),
                                      random_tensor({out}, 13)};
    auto f = [](const std::vector<Var>& v) { return linear(v[0], v[1], v[2]); };
    auto g = [](const std::vector<Var>& v) { return add(matmul(v[0], v[1], false, true), v[2]); };
    Agreement d = compare(f, g, args);
    CHECK(d.out_rel < 1e-5);
    CHECK(d.grad_rel < 1e-4);
    CHECK_THREAD_INVARIANT(f, args);

    // Every bias gradient is the in-order float sum of its column of dY: each column summed
    // once, by one block.
    std::vector<Var> v;
    for (const Tensor& t : args) v.push_back(tape().leaf(t.clone(), true));
    Tensor dy = random_tensor({rows, out}, 14);
    tape().backward(linear(v[0], v[1], v[2]), dy);
    int64_t mismatches = 0;
    for (int64_t c = 0; c < out; ++c) {
      float sum = 0.0f;
      for (int64_t r = 0; r < rows; ++r) sum += dy[r * out + c];
      mismatches += v[2].grad()[c] != sum;
    }
    CHECK(mismatches == 0);
    tape().reset();
  }
}

TEST_CASE("matmul and linear: shape errors name the op and the shapes") {
  Var a = tape().leaf(Tensor::zeros({2, 3}));
  Var b = tape().leaf(Tensor::zeros({4, 5}));
  CHECK_THROWS_WITH_AS(matmul(a, b), doctest::Contains("matmul: inner dims differ: a (2, 3) and b (4, 5)"), Error);
  CHECK_THROWS_WITH_AS(linear(a, b), doctest::Contains("linear: x (2, 3) and weight (4, 5) do not fit"), Error);
  Var c = tape().leaf(Tensor::zeros({3, 3, 2}));
  Var d = tape().leaf(Tensor::zeros({2, 2, 4}));
  CHECK_THROWS_WITH_AS(matmul(c, d), doctest::Contains("batch dims"), Error);
  tape().reset();
}
