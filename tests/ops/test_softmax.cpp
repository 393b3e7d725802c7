// softmax / log_softmax. Tolerances: gradcheck defaults; fused vs composite within 1e-5 of the largest |value| (float32 rounding of exp and log in a different order).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "gradcheck.h"
#include "nanoattn/ops.h"

using namespace na;
using namespace na::testing;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Test-only custom function: -inf -> 0, with no gradient there. Causal log_softmax puts -inf in
// masked entries; this keeps the checker's weighted sums finite.
Var zero_masked(const Var& x) {
  Var out = tape().output(x.shape(), {x});
  for (int64_t i = 0; i < x.numel(); ++i) out.value()[i] = std::isinf(x.value()[i]) ? 0.0f : x.value()[i];
  record_backward(out, [=] {
    const Tensor& dx = x.grad_acc();
    for (int64_t i = 0; i < x.numel(); ++i)
      if (!std::isinf(x.value()[i])) dx[i] += out.grad()[i];
  });
  return out;
}

// mask: (T, S), 0 where row t sees column s (s <= t), -inf elsewhere.
Tensor causal_mask(int64_t T, int64_t S) {
  Tensor m = Tensor::zeros({T, S});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = t + 1; s < S; ++s) m[t * S + s] = -kInf;
  return m;
}

// Composites from primitive ops. x: (..., T, S)
Var masked(const Var& x, bool causal) {
  return causal ? add(x, tape().leaf(causal_mask(x.dim(-2), x.dim(-1)))) : x;
}
Var softmax_composite(const Var& x, bool causal) {  // exp(x - max) / sum
  Var xm = masked(x, causal);
  Var e = exp(sub(xm, max(xm, -1, true)));
  return div(e, sum(e, -1, true));
}
Var log_softmax_composite(const Var& x, bool causal) {  // x - max - log(sum(exp(x - max)))
  Var xm = masked(x, causal);
  Var d = sub(xm, max(xm, -1, true));
  return sub(d, log(sum(exp(d), -1, true)));
}

std::vector<float> values(const Var& v) { return v.value().to_vector(); }

void check_close(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    if (std::isinf(want[i])) CHECK(got[i] == want[i]);
    else CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-6));
  }
}

}  // namespace

TEST_CASE("softmax / log_softmax: hand-computed values") {
  Var x = tape().leaf(Tensor::from({2, 3}, {1, 2, 3, 1000, 1000, 1000}));  // row 2: no overflow
  check_close(values(softmax(x)), {0.09003057f, 0.24472847f, 0.66524096f, 1 / 3.f, 1 / 3.f, 1 / 3.f});
  check_close(values(log_softmax(x)),
              {-2.40760596f, -1.40760596f, -0.40760596f, -1.09861229f, -1.09861229f, -1.09861229f});
  tape().reset();
}

TEST_CASE("softmax / log_softmax: causal mask, square and T != S") {
  Var x = tape().leaf(Tensor::from({3, 3}, {1, 2, 3, 1, 2, 3, 1, 2, 3}));
  check_close(values(softmax(x, true)),
              {1, 0, 0, 0.26894142f, 0.73105858f, 0, 0.09003057f, 0.24472847f, 0.66524096f});
  check_close(values(log_softmax(x, true)),
              {0, -kInf, -kInf, -1.31326169f, -0.31326169f, -kInf, -2.40760596f, -1.40760596f, -0.40760596f});
  // (T, S) = (2, 4): row t sees columns s <= t. (4, 2): rows t >= 1 see both columns.
  Var w = tape().leaf(Tensor::from({2, 4}, {1, 2, 3, 4, 1, 2, 3, 4}));
  check_close(values(softmax(w, true)), {1, 0, 0, 0, 0.26894142f, 0.73105858f, 0, 0});
  Var t = tape().leaf(Tensor::from({4, 2}, {1, 2, 1, 2, 1, 2, 1, 2}));
  check_close(values(softmax(t, true)), {1, 0, 0.26894142f, 0.73105858f, 0.26894142f, 0.73105858f,
                                         0.26894142f, 0.73105858f});
  tape().reset();
}

TEST_CASE("softmax / log_softmax: finite-difference gradients, causal and not") {
  for (bool causal : {false, true})
    for (Shape s : {Shape{2, 3, 5}, Shape{2, 4, 4}, Shape{5, 3}, Shape{2, 1, 3, 4}}) {
      CAPTURE(causal);
      CAPTURE(s);
      Tensor x = random_tensor(s, 11, -2.0f, 2.0f);
      CHECK_GRADIENTS([=](const std::vector<Var>& v) { return softmax(v[0], causal); }, {x});
      CHECK_GRADIENTS([=](const std::vector<Var>& v) { return zero_masked(log_softmax(v[0], causal)); }, {x});
    }
}

TEST_CASE("softmax / log_softmax: masked entries get exactly zero gradient") {
  Var x = tape().leaf(random_tensor({3, 3}, 5), true);
  Var y = log_softmax(x, true);
  tape().backward(y, Tensor::full({3, 3}, 1.0f));  // even a gradient sent into the -inf entries
  for (int64_t i : {1, 2, 5}) CHECK(x.grad()[i] == 0.0f);
  tape().reset();
}

TEST_CASE("softmax / log_softmax: fused agrees with the composite of primitive ops") {
  // (4, 64, 64) has 256 rows: several parallel row chunks.
  for (Shape s : {Shape{2, 5, 7}, Shape{4, 64, 64}})
  for (bool causal : {false, true}) {
    CAPTURE(s);
    CAPTURE(causal);
    std::vector<Tensor> in = {random_tensor(s, 3, -3.0f, 3.0f)};
    Agreement a = compare([=](const std::vector<Var>& v) { return softmax(v[0], causal); },
                          [=](const std::vector<Var>& v) { return softmax_composite(v[0], causal); }, in);
    CHECK(a.out_rel < 1e-5);
    CHECK(a.grad_rel < 1e-5);
    Agreement b = compare(
        [=](const std::vector<Var>& v) { return zero_masked(log_softmax(v[0], causal)); },
        [=](const std::vector<Var>& v) { return zero_masked(log_softmax_composite(v[0], causal)); }, in);
    CHECK(b.out_rel < 1e-5);
    CHECK(b.grad_rel < 1e-5);
  }
}

TEST_CASE("softmax / log_softmax: errors name the op and the shape") {
  Var v = tape().leaf(Tensor::zeros({5}));
  CHECK_THROWS_WITH_AS(softmax(v, true), doctest::Contains("softmax: causal needs x: (..., T, S), got (5,)"), Error);
  CHECK_THROWS_WITH_AS(log_softmax(v, true), doctest::Contains("log_softmax: causal needs x: (..., T, S), got (5,)"), Error);
  CHECK_THROWS_WITH_AS(softmax(Var()), doctest::Contains("softmax: input 'x' is undefined"), Error);
  CHECK(softmax(v).shape() == Shape{5});  // 1-D is fine without the mask
  tape().reset();
}
