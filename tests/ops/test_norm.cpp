// layernorm / rmsnorm. Tolerances: gradcheck defaults; fused vs composite within 1e-5 of the largest |value| (sqrt as exp(0.5 log) is a few ulp off), 1e-4 for weight gradients summed over 300 rows in another order.
#include <doctest/doctest.h>

#include "gradcheck.h"
#include "nanoattn/ops.h"

using namespace na;
using namespace na::testing;

namespace {

// Composites from primitive ops. x: (..., C)  w, b: (C,) or undefined
Var sqrt_composite(const Var& v) { return exp(scale(log(v), 0.5f)); }
Var affine(Var y, const Var& w, const Var& b) {
  if (w.defined()) y = mul(y, w);
  if (b.defined()) y = add(y, b);
  return y;
}
Var layernorm_composite(const Var& x, const Var& w, const Var& b, float eps) {
  Var d = sub(x, mean(x, -1, true));
  Var var = mean(mul(d, d), -1, true);
  return affine(div(d, sqrt_composite(add_scalar(var, eps))), w, b);
}
Var rmsnorm_composite(const Var& x, const Var& w, float eps) {
  Var ms = mean(mul(x, x), -1, true);
  return affine(div(x, sqrt_composite(add_scalar(ms, eps))), w, Var());
}

// Inputs are always {x, w, b}; a case without weight or bias passes Var() instead of them.
struct Case {
  bool w, b;
  Var weight(const std::vector<Var>& v) const { return w ? v[1] : Var(); }
  Var bias(const std::vector<Var>& v) const { return b ? v[2] : Var(); }
};
std::vector<Tensor> norm_inputs(const Shape& x, uint64_t seed) {
  int64_t C = x[-1];
  return {random_tensor(x, seed, -2.0f, 2.0f), random_tensor({C}, seed + 1, 0.5f, 1.5f),
          random_tensor({C}, seed + 2)};
}

void check_values(const Var& y, const std::vector<float>& want) {
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CHECK(y.value()[i] == doctest::Approx(want[i]).epsilon(1e-6));
  }
}

}  // namespace

TEST_CASE("layernorm / rmsnorm: hand-computed values") {
  Var x = tape().leaf(Tensor::from({1, 4}, {1, 2, 3, 4}));
  Var w = tape().leaf(Tensor::from({4}, {1, 2, -1, 0.5f}));
  Var b = tape().leaf(Tensor::from({4}, {0, 0, 0, 1}));
  // mean 2.5, biased var 1.25
  check_values(layernorm(x, Var(), Var()), {-1.34163542f, -0.44721181f, 0.44721181f, 1.34163542f});
  check_values(layernorm(x, w, b), {-1.34163542f, -0.89442361f, -0.44721181f, 1.67081771f});
  // mean square 7.5
  check_values(rmsnorm(x, Var()), {0.36514835f, 0.73029669f, 1.09544504f, 1.46059339f});
  check_values(rmsnorm(x, w), {0.36514835f, 1.46059339f, -1.09544504f, 0.73029669f});
  // A large offset changes nothing: the variance is taken about the mean in a second pass.
  Var far = tape().leaf(Tensor::from({1, 4}, {1001, 1002, 1003, 1004}));
  check_values(layernorm(far, Var(), Var()), {-1.34163542f, -0.44721181f, 0.44721181f, 1.34163542f});
  tape().reset();
}

TEST_CASE("layernorm / rmsnorm: finite-difference gradients with and without weight / bias") {
  for (Case c : {Case{true, true}, Case{true, false}, Case{false, true}, Case{false, false}}) {
    CAPTURE(c.w);
    CAPTURE(c.b);
    std::vector<Tensor> in = norm_inputs({2, 3, 6}, 21);
    CHECK_GRADIENTS([=](const std::vector<Var>& v) { return layernorm(v[0], c.weight(v), c.bias(v)); },
                    in, GradCheck{}, {true, c.w, c.b});
    CHECK_GRADIENTS([=](const std::vector<Var>& v) { return rmsnorm(v[0], c.weight(v)); }, in,
                    GradCheck{}, {true, c.w, false});
  }
  // Only the weight and bias want gradients (a frozen input).
  CHECK_GRADIENTS([](const std::vector<Var>& v) { return layernorm(v[0], v[1], v[2]); },
                  norm_inputs({4, 5}, 31), GradCheck{}, {false, true, true});
}

TEST_CASE("layernorm / rmsnorm: fused agrees with the composite of primitive ops") {
  // (300, 64): several row chunks, so dw and db are combined from per-chunk partial sums; they
  // sum 300 rows (|dw| ~ 10) in another order than the composite, hence the looser bound.
  for (auto [s, grad_tol] : {std::pair{Shape{3, 4, 16}, 1e-5}, std::pair{Shape{300, 64}, 1e-4}})
  for (Case c : {Case{true, true}, Case{false, false}}) {
    CAPTURE(s);
    CAPTURE(c.w);
    std::vector<Tensor> in = norm_inputs(s, 41);
    Agreement ln = compare(
        [=](const std::vector<Var>& v) { return layernorm(v[0], c.weight(v), c.bias(v), 1e-5f); },
        [=](const std::vector<Var>& v) { return layernorm_composite(v[0], c.weight(v), c.bias(v), 1e-5f); }, in);
    CHECK(ln.out_rel < 1e-5);
    CHECK(ln.grad_rel < grad_tol);
    Agreement rms = compare([=](const std::vector<Var>& v) { return rmsnorm(v[0], c.weight(v), 1e-6f); },
                            [=](const std::vector<Var>& v) { return rmsnorm_composite(v[0], c.weight(v), 1e-6f); }, in);
    CHECK(rms.out_rel < 1e-5);
    CHECK(rms.grad_rel < grad_tol);
  }
}

TEST_CASE("layernorm / rmsnorm: bitwise identical for 1 thread and all threads") {
  // 300 rows of 64: several row chunks, so dw and db are combined from partial sums.
  std::vector<Tensor> in = norm_inputs({300, 64}, 51);
  CHECK_THREAD_INVARIANT([](const std::vector<Var>& v) { return layernorm(v[0], v[1], v[2]); }, in);
  CHECK_THREAD_INVARIANT([](const std::vector<Var>& v) { return rmsnorm(v[0], v[1]); }, in,
                         {true, true, false});
}

TEST_CASE("layernorm / rmsnorm: errors name the op and the shapes") {
  Var x = tape().leaf(Tensor::zeros({2, 4}));
  Var w5 = tape().leaf(Tensor::zeros({5}));
  Var b41 = tape().leaf(Tensor::zeros({4, 1}));
  CHECK_THROWS_WITH_AS(layernorm(x, w5, Var()), doctest::Contains("layernorm: weight (5,) must be (4,) to match x (2, 4)"), Error);
  CHECK_THROWS_WITH_AS(layernorm(x, Var(), b41), doctest::Contains("layernorm: bias (4, 1) must be (4,) to match x (2, 4)"), Error);
  CHECK_THROWS_WITH_AS(rmsnorm(x, w5), doctest::Contains("rmsnorm: weight (5,) must be (4,) to match x (2, 4)"), Error);
  CHECK_THROWS_WITH_AS(rmsnorm(tape().leaf(Tensor::zeros({2, 0})), Var()),
                       doctest::Contains("rmsnorm: x (2, 0) needs a non-empty last axis"), Error);
  CHECK_THROWS_WITH_AS(layernorm(Var(), Var(), Var()), doctest::Contains("layernorm: input 'x' is undefined"), Error);
  tape().reset();
}
