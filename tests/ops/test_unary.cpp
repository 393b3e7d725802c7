// Unary ops. Tolerances: the gradcheck defaults (see gradcheck.h); relu and elu get inputs at
// least 0.1 away from their kink at 0 (more than the 2h = 0.02 reach of the stencil), log gets
// inputs in [0.5, 2) where 1/x is tame.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "gradcheck.h"
#include "nanoattn/ops.h"

using namespace na;
using namespace na::testing;

namespace {

using UnaryFn = std::function<Var(const Var&)>;

// op applied to the 1-D tensor xs equals want, each element to a relative 1e-5 (scale 0: tiny
// values like sigmoid(-30) = 9.4e-14 must be right relative to themselves, not merely small).
void check_values(const UnaryFn& op, const std::vector<float>& xs, const std::vector<double>& want) {
  Var y = op(tape().leaf(Tensor::from({static_cast<int64_t>(xs.size())}, xs)));
  REQUIRE(y.shape() == Shape{static_cast<int64_t>(xs.size())});
  for (size_t i = 0; i < xs.size(); ++i) {
    CAPTURE(xs[i]);
    if (want[i] == 0) CHECK(y.value()[i] == 0.0f);
    else CHECK(y.value()[i] == doctest::Approx(want[i]).epsilon(1e-5).scale(0));
  }
  tape().reset();
}

void check_grad(const UnaryFn& op, const Tensor& x) {
  CHECK_GRADIENTS([op](const std::vector<Var>& v) { return op(v[0]); }, {x});
}

}  // namespace

TEST_CASE("unary ops: values against hand-computed numbers") {
  // Reference values: Python's math module in double.
  check_values([](const Var& x) { return na::exp(x); }, {0, 1, -1, -20},
               {1.0, 2.718281828459045, 0.36787944117144233, 2.061153622438558e-09});
  check_values([](const Var& x) { return na::log(x); }, {1, 2.7182817f, 0.5f, 1e-30f},
               {0.0, 0.99999996963214, -0.6931471805599453, -69.07755278982137});
  check_values([](const Var& x) { return elu(x, 0.5f); }, {-1, 0, 2, -30},
               {-0.31606027941427883, 0.0, 2.0, -0.4999999999999532});
  check_values([](const Var& x) { return elu(x); }, {-1, 3}, {-0.6321205588285577, 3.0});
  check_values([](const Var& x) { return relu(x); }, {-1, 0, 2.5f}, {0, 0, 2.5});
  check_values([](const Var& x) { return gelu(x); }, {-1, 0, 1, 2, -10},
               {-0.15865525393145707, 0.0, 0.8413447460685429, 1.9544997361036416,
                -7.619853024160593e-23});
  check_values([](const Var& x) { return na::tanh(x); }, {0, 1, -2, 20},
               {0.0, 0.7615941559557649, -0.9640275800758169, 1.0});
  check_values([](const Var& x) { return sigmoid(x); }, {0, 2, -30, 100, -80},
               {0.5, 0.8807970779778823, 9.357622968839299e-14, 1.0, 1.8048513878454153e-35});
  // Stability: no overflow at +100, no rounding to 0 at -30.
  check_values([](const Var& x) { return softplus(x); }, {0, 1, -1, 100, -30},
               {0.6931471805599453, 1.3132616875182228, 0.31326168751822286, 100.0,
                9.357622968839737e-14});
}

TEST_CASE("unary ops: finite-difference gradients") {
  Shape s{2, 3, 5};
  check_grad([](const Var& x) { return na::exp(x); }, random_tensor(s, 1));
  check_grad([](const Var& x) { return na::log(x); }, random_tensor(s, 2, 0.5f, 2.0f));
  check_grad([](const Var& x) { return elu(x); }, random_away_from_zero(s, 3));
  check_grad([](const Var& x) { return elu(x, 0.3f); }, random_away_from_zero(s, 4, 0.1f, 3.0f));
  check_grad([](const Var& x) { return relu(x); }, random_away_from_zero(s, 5));
  check_grad([](const Var& x) { return gelu(x); }, random_tensor(s, 6, -3.0f, 3.0f));
  check_grad([](const Var& x) { return na::tanh(x); }, random_tensor(s, 7, -2.0f, 2.0f));
  check_grad([](const Var& x) { return sigmoid(x); }, random_tensor(s, 8, -4.0f, 4.0f));
  check_grad([](const Var& x) { return softplus(x); }, random_tensor(s, 9, -4.0f, 4.0f));
}

TEST_CASE("unary ops: gradients at the kinks follow PyTorch") {
  Var x = tape().leaf(Tensor::from({2}, {0, 0}), true);
  tape().backward(sum_all(add(relu(x), elu(x, 0.5f))));
  CHECK(x.grad().to_vector() == std::vector<float>{0.5f, 0.5f});  // relu'(0) = 0, elu'(0) = alpha
  tape().reset();
}

TEST_CASE("unary ops: large inputs use several tasks and match the scalar function") {
  Tensor t = random_tensor({3, 40000}, 10, -5.0f, 5.0f);
  Var y = gelu(tape().leaf(t));
  for (int64_t i = 0; i < t.numel(); i += 997) {
    double v = t[i];
    CHECK(y.value()[i] == doctest::Approx(v * 0.5 * std::erfc(-v / std::sqrt(2.0))).epsilon(1e-5));
  }
  tape().reset();
}

TEST_CASE("gelu: value and slope within 1e-5 relative of the exact ones on a dense grid") {
  // 40001 points over [-10, 10], the left tail included (gelu(-10) ~ -7.6e-23), where absolute
  // accuracy alone would hide a wrong tail. The slope Phi(x) + x phi(x) is 0 near x = -0.75,
  // where its two terms cancel: its error is taken relative to |Phi(x)| + |x phi(x)|.
  // Measured: value 7e-6, slope 2e-6 at worst.
  const int64_t n = 40001;
  Tensor t = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) t[i] = static_cast<float>(-10.0 + 20.0 * i / (n - 1));
  Var x = tape().leaf(t, true);
  Var y = gelu(x);
  tape().backward(sum_all(y));
  double worst_value = 0, worst_slope = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = t[i], cdf = 0.5 * std::erfc(-v / std::sqrt(2.0));
    const double pdf = std::exp(-0.5 * v * v) / std::sqrt(2.0 * M_PI);
    if (v != 0.0)
      worst_value = std::max(worst_value, std::fabs(y.value()[i] - v * cdf) / std::fabs(v * cdf));
    worst_slope = std::max(worst_slope, std::fabs(x.grad()[i] - (cdf + v * pdf)) /
                                            (std::fabs(cdf) + std::fabs(v * pdf)));
  }
  MESSAGE("worst relative error: value ", worst_value, ", slope ", worst_slope);
  CHECK(worst_value < 1e-5);
  CHECK(worst_slope < 1e-5);
  tape().reset();
}

TEST_CASE("unary ops: an undefined input names the op") {
  const std::pair<const char*, UnaryFn> ops[] = {
      {"exp", [](const Var& x) { return na::exp(x); }},
      {"log", [](const Var& x) { return na::log(x); }},
      {"elu", [](const Var& x) { return elu(x); }},
      {"relu", [](const Var& x) { return relu(x); }},
      {"gelu", [](const Var& x) { return gelu(x); }},
      {"tanh", [](const Var& x) { return na::tanh(x); }},
      {"sigmoid", [](const Var& x) { return sigmoid(x); }},
      {"softplus", [](const Var& x) { return softplus(x); }},
  };
  for (const auto& [name, op] : ops) {
    std::string want = std::string(name) + ": input 'x' is undefined";
    CHECK_THROWS_WITH_AS(op(Var()), doctest::Contains(want.c_str()), Error);
  }
}
