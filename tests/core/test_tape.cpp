#include <doctest/doctest.h>

#include <cmath>

#include "nanoattn/ops.h"

using namespace na;

TEST_CASE("tape: gradients accumulate across uses of a value and across steps") {
  Parameter w("w", Tensor::from({2}, {3, 4}));
  Var y = add(mul(w, w), w);  // dy/dw = 2w + 1
  tape().backward(sum_all(y));
  CHECK(w.grad().to_vector() == std::vector<float>{7, 9});
  tape().reset();
  tape().backward(sum_all(mul(w, w)));  // no zero_grad: adds 2w
  CHECK(w.grad().to_vector() == std::vector<float>{13, 17});
  w.zero_grad();
  CHECK(w.grad().to_vector() == std::vector<float>{0, 0});
  tape().reset();
}

TEST_CASE("tape: NoGrad records nothing") {
  Parameter w("w", Tensor::from({2}, {1, 2}));
  {
    NoGrad no_grad;
    Var y = mul(w, w);
    CHECK_FALSE(y.requires_grad());
    CHECK(tape().entry_count() == 0);
  }
  Var y = mul(w, w);
  CHECK(y.requires_grad());
  CHECK(tape().entry_count() == 1);
  tape().reset();
}

TEST_CASE("tape: clear errors for misuse, never a crash") {
  Parameter w("w", Tensor::from({2}, {1, 2}));
  Var y = mul(w, w);
  CHECK_THROWS_WITH_AS(tape().backward(y), doctest::Contains("backward: the output has shape (2,), not one element: pass a seed gradient"), Error);
  Var loss = sum_all(y);
  tape().backward(loss);
  CHECK_THROWS_WITH_AS(tape().backward(loss), doctest::Contains("backward already ran and freed its entries"), Error);
  tape().reset();
  CHECK_THROWS_WITH_AS(loss.value(), doctest::Contains("used after its tape was reset"), Error);
  Var c = tape().leaf(Tensor::from({1}, {3}));
  CHECK_THROWS_WITH_AS(tape().backward(c), doctest::Contains("does not require a gradient"), Error);
  CHECK_THROWS_WITH_AS(tape().backward(loss = sum_all(y = mul(w, w)), Tensor::zeros({3})),
                       doctest::Contains("seed gradient shape (3,) does not match the output shape (1,)"), Error);
  tape().reset();
}

// A custom function with its own backward, as a plugin would write one: y = x^3, dy/dx = 3x^2.
Var cube(const Var& x) {
  Var out = tape().output(x.shape(), {x});
  for (int64_t i = 0; i < x.numel(); ++i) out.value()[i] = x.value()[i] * x.value()[i] * x.value()[i];
  record_backward(out, [=] {
    const Tensor& dx = x.grad_acc();
    for (int64_t i = 0; i < x.numel(); ++i) dx[i] += 3 * x.value()[i] * x.value()[i] * out.grad()[i];
  });
  return out;
}

TEST_CASE("tape: custom functions record their own backward") {
  Parameter w("w", Tensor::from({3}, {1, -2, 0.5f}));
  tape().backward(sum_all(cube(w)));
  CHECK(w.grad().to_vector() == std::vector<float>{3, 12, 0.75f});
  tape().reset();
}

TEST_CASE("tape: a steady-state step allocates no new arena memory") {
  Parameter w("w", Tensor::zeros({64, 64}));
  size_t cap = 0;
  for (int step = 0; step < 4; ++step) {
    Var x = tape().leaf(Tensor::full({32, 64}, 1.0f));
    tape().backward(sum_all(relu(linear(x, w))));
    if (step == 2) cap = tape().arena().capacity();
    if (step == 3) CHECK(tape().arena().capacity() == cap);
    tape().reset();
    CHECK(tape().arena().chunk_count() == 1);
  }
}

TEST_CASE("tape: an op output's gradient buffer is reused once its backward ran; leaves keep theirs") {
  Parameter w("w", Tensor::full({256}, 0.5f));
  Var x = tape().leaf(Tensor::full({256}, 2.0f), true);
  // A chain of same-shaped intermediates: each one's gradient is dead once its entry ran.
  Var h = mul(x, w);
  for (int i = 0; i < 8; ++i) h = scale(h, 1.5f);
  const size_t before = tape().arena().bytes_in_use();
  tape().backward(sum_all(h));
  const size_t grads = tape().arena().bytes_in_use() - before;
  // Without reuse: 10 buffers of 256 floats (h's 9 and the leaf x's), 10240 bytes. With it: at
  // most 4 (the one being read, the one being written, x's, mul's), plus the loss's seed and
  // alignment.
  CHECK(grads <= 4 * 256 * sizeof(float) + 512);
  CHECK_FALSE(h.has_grad());  // recycled
  const float expect = 0.5f * std::pow(1.5f, 8.0f);
  for (int64_t i = 0; i < 256; ++i) {
    REQUIRE(x.grad()[i] == doctest::Approx(expect).epsilon(1e-6));
    REQUIRE(w.grad()[i] == doctest::Approx(2.0f * std::pow(1.5f, 8.0f)).epsilon(1e-6));
  }
  tape().reset();
}

TEST_CASE("arena: high_water is the most bytes ever in use, across resets") {
  Arena a;
  CHECK(a.high_water() == 0);
  a.alloc_floats(1000);
  const size_t one = a.bytes_in_use();
  a.alloc_floats(1000);
  const size_t two = a.bytes_in_use();
  CHECK(a.high_water() == two);
  a.reset();
  a.alloc_floats(1000);
  CHECK(a.bytes_in_use() == one);
  CHECK(a.high_water() == two);  // the earlier, bigger step
}
