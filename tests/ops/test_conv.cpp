// causal_conv1d. Tolerances: gradcheck defaults (outputs sum <= 12 products in [-1, 1]); vs the
// composite and a naive loop, 1e-5 / 1e-4 of the largest |value| for outputs / gradients (float32
// sums of <= 300 rows, other order).
#include <doctest/doctest.h>

#include <cmath>

#include "gradcheck.h"
#include "nanoattn/ops.h"

using namespace na;
using namespace na::testing;

namespace {

// The formula of ops.h as nested loops, in double.
Tensor naive_conv(const Tensor& x, const Tensor& w, const Tensor* bias, int G) {
  int64_t B = x.dim(0), T = x.dim(1), Cin = x.dim(2), Cout = w.dim(0), cg = w.dim(1), K = w.dim(2);
  Tensor y = Tensor::empty({B, T, Cout});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t o = 0; o < Cout; ++o) {
        int64_t g = o / (Cout / G);
        double acc = bias ? (*bias)[o] : 0.0;
        for (int64_t c = 0; c < cg; ++c)
          for (int64_t k = 0; k < K; ++k) {
            int64_t ti = t - (K - 1) + k;
            if (ti >= 0) acc += double(w[(o * cg + c) * K + k]) * x[(b * T + ti) * Cin + g * cg + c];
          }
        y[(b * T + t) * Cout + o] = static_cast<float>(acc);
      }
  return y;
}

struct Config {
  int64_t Cin, Cout, K;
  int G;
  bool bias;
};

// Groups 1, 2 and Cin (depthwise, with channel multipliers 1 and 2); K 1 and 3; with and
// without bias.
const Config kConfigs[] = {
    {4, 6, 3, 1, true}, {4, 6, 1, 1, false}, {4, 6, 3, 2, false}, {4, 6, 1, 2, true},
    {4, 4, 3, 4, true}, {4, 8, 3, 4, false}, {4, 4, 1, 4, false},
};
// Big enough for several time blocks per batch (forward and dx) and channel blocks (dw).
const Config kBigConfigs[] = {{32, 160, 4, 2, true}, {160, 160, 4, 160, false}};

std::vector<Tensor> conv_inputs(const Config& c, int64_t B, int64_t T, uint64_t seed) {
  std::vector<Tensor> in = {random_tensor({B, T, c.Cin}, seed),
                            random_tensor({c.Cout, c.Cin / c.G, c.K}, seed + 1)};
  if (c.bias) in.push_back(random_tensor({c.Cout}, seed + 2));
  return in;
}

Var run_conv(const std::vector<Var>& v, int G) {
  return causal_conv1d(v[0], v[1], v.size() > 2 ? v[2] : Var(), G);
}

}  // namespace

TEST_CASE("causal_conv1d: values by hand") {
  // y[t] = 1 + 2 x[t-1] + 3 x[t], with x[-1] = 0.
  Var x = tape().leaf(Tensor::from({1, 3, 1}, {1, 2, 4}));
  Var w = tape().leaf(Tensor::from({1, 1, 2}, {2, 3}));
  Var b = tape().leaf(Tensor::from({1}, {1}));
  CHECK(causal_conv1d(x, w, b, 1).value().to_vector() == std::vector<float>{4, 9, 17});
  // Two groups, K = 1: channel 0 scaled by 2, channel 1 by -1.
  Var x2 = tape().leaf(Tensor::from({1, 2, 2}, {1, 2, 3, 4}));
  Var w2 = tape().leaf(Tensor::from({2, 1, 1}, {2, -1}));
  CHECK(causal_conv1d(x2, w2, Var(), 2).value().to_vector() == std::vector<float>{2, -2, 6, -4});
  tape().reset();
}

TEST_CASE("causal_conv1d: agrees with a naive loop") {
  std::vector<Config> configs(std::begin(kConfigs), std::end(kConfigs));
  configs.insert(configs.end(), std::begin(kBigConfigs), std::end(kBigConfigs));
  for (const Config& c : configs) {
    CAPTURE(c.G);
    CAPTURE(c.K);
    std::vector<Tensor> in = conv_inputs(c, 3, 150, 10);
    std::vector<Var> v;
    for (const Tensor& t : in) v.push_back(tape().leaf(t));
    Tensor y = run_conv(v, c.G).value();
    Tensor want = naive_conv(in[0], in[1], c.bias ? &in[2] : nullptr, c.G);
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < y.numel(); ++i) {
      worst = std::max(worst, std::fabs(double(y[i]) - want[i]));
      scale = std::max(scale, std::fabs(double(want[i])));
    }
    CHECK(worst < 1e-5 * scale);
    tape().reset();
  }
}

TEST_CASE("causal_conv1d: gradients for groups 1, 2 and depthwise, K 1 and 3, with/without bias") {
  for (const Config& c : kConfigs) {
    CAPTURE(c.G);
    CAPTURE(c.K);
    CAPTURE(c.bias);
    int G = c.G;
    CHECK_GRADIENTS([G](const std::vector<Var>& v) { return run_conv(v, G); }, conv_inputs(c, 2, 5, 20));
  }
  // K longer than T: every output reads the padding.
  CHECK_GRADIENTS([](const std::vector<Var>& v) { return run_conv(v, 1); },
                  conv_inputs({2, 3, 5, 1, true}, 2, 3, 30));
}

TEST_CASE("causal_conv1d: causal, exactly") {
  Config c{4, 6, 3, 2, true};
  std::vector<Tensor> in = conv_inputs(c, 2, 8, 40);
  auto conv_of = [&](const Tensor& x) {
    return causal_conv1d(tape().leaf(x), tape().leaf(in[1]), tape().leaf(in[2]), c.G).value();
  };
  Tensor ref = conv_of(in[0]).clone();
  tape().reset();
  for (int64_t t = 0; t + 1 < 8; ++t) {
    CAPTURE(t);
    Tensor x = in[0].clone(), noise = random_tensor(x.shape(), 50 + t, -5.0f, 5.0f);
    for (int64_t b = 0; b < 2; ++b)  // change every x at times > t
      for (int64_t s = t + 1; s < 8; ++s)
        for (int64_t ch = 0; ch < 4; ++ch) x[(b * 8 + s) * 4 + ch] += noise[(b * 8 + s) * 4 + ch];
    Tensor y = conv_of(x);
    bool same = true, changed = false;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t s = 0; s < 8; ++s)
        for (int64_t o = 0; o < 6; ++o) {
          int64_t i = (b * 8 + s) * 6 + o;
          if (s <= t) same = same && y[i] == ref[i];
          else changed = changed || y[i] != ref[i];
        }
    CHECK(same);
    CHECK(changed);  // the perturbation did reach the later outputs
    tape().reset();
  }
}

TEST_CASE("causal_conv1d: agrees with slice / concat / matmul, values and gradients") {
  // Shapes with several time blocks per batch and several output-channel blocks.
  for (const Config& c : kBigConfigs) {
    CAPTURE(c.G);
    auto composite = [c](const std::vector<Var>& v) {
      const Var &x = v[0], &w = v[1];
      int64_t B = x.dim(0), T = x.dim(1), cin_g = c.Cin / c.G, cout_g = c.Cout / c.G;
      Var pad = concat({tape().leaf(Tensor::zeros({B, c.K - 1, c.Cin})), x}, 1);  // causal padding
      std::vector<Var> ys;
      for (int g = 0; g < c.G; ++g) {
        Var xg = slice(pad, 2, g * cin_g, (g + 1) * cin_g), wg = slice(w, 0, g * cout_g, (g + 1) * cout_g);
        Var yg;
        for (int64_t k = 0; k < c.K; ++k) {
          Var wk = reshape(slice(wg, 2, k, k + 1), {cout_g, cin_g});
          Var term = matmul(slice(xg, 1, k, k + T), wk, false, true);
          yg = k == 0 ? term : add(yg, term);
        }
        ys.push_back(yg);
      }
      Var y = concat(ys, 2);
      return v.size() > 2 ? add(y, v[2]) : y;
    };
    auto fused = [c](const std::vector<Var>& v) { return run_conv(v, c.G); };
    Agreement a = compare(fused, composite, conv_inputs(c, 2, 150, 70));
    CHECK(a.out_rel < 1e-5);
    CHECK(a.grad_rel < 1e-4);
  }
}

TEST_CASE("causal_conv1d: bitwise identical for 1 and 2 threads") {
  for (const Config& c : kBigConfigs) {
    CAPTURE(c.G);
    int G = c.G;
    CHECK_THREAD_INVARIANT([G](const std::vector<Var>& v) { return run_conv(v, G); },
                           conv_inputs(c, 2, 300, 60));  // several time and channel blocks
  }
}

TEST_CASE("causal_conv1d: errors name the op and the shapes") {
  Var x = tape().leaf(Tensor::zeros({2, 5, 6}));
  auto w = [](Shape s) { return tape().leaf(Tensor::zeros(s)); };
  CHECK_THROWS_WITH_AS(causal_conv1d(x, w({4, 2, 3}), Var(), 4), doctest::Contains("causal_conv1d: Cin = 6 of x (2, 5, 6) is not divisible by groups = 4"), Error);
  CHECK_THROWS_WITH_AS(causal_conv1d(x, w({6, 3, 2}), Var(), 3), doctest::Contains("causal_conv1d: weight (6, 3, 2) must be (Cout, Cin/G, K) = (Cout, 2, K >= 1) for x (2, 5, 6) and groups = 3"), Error);
  CHECK_THROWS_WITH_AS(causal_conv1d(x, w({6, 6}), Var(), 1), doctest::Contains("causal_conv1d: weight (6, 6) must be (Cout, Cin/G, K)"), Error);
  CHECK_THROWS_WITH_AS(causal_conv1d(x, w({5, 3, 2}), Var(), 2), doctest::Contains("causal_conv1d: Cout = 5 of weight (5, 3, 2) is not divisible by groups = 2"), Error);
  CHECK_THROWS_WITH_AS(causal_conv1d(x, w({4, 6, 2}), w({3}), 1), doctest::Contains("causal_conv1d: bias (3,) must be (4,) for weight (4, 6, 2)"), Error);
  CHECK_THROWS_WITH_AS(causal_conv1d(w({5, 6}), w({4, 6, 2}), Var(), 1), doctest::Contains("causal_conv1d: x must be (B, T, Cin), got (5, 6)"), Error);
  CHECK_THROWS_WITH_AS(causal_conv1d(x, w({4, 6, 2}), Var(), 0), doctest::Contains("causal_conv1d: groups must be >= 1, got 0"), Error);
  tape().reset();
}
