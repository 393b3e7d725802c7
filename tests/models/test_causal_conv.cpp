// The causal_conv block: its forward against a naive loop, its gradients (input through the
// checker, parameters by finite differences of the block itself), its recurrent form against
// the parallel one, and its option errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "gradcheck.h"
#include "model.h"
#include "plugin_loader.h"

using namespace na;
using na::testing::random_tensor;

namespace {

const PluginRegistry& plugins() {
  static PluginRegistry reg;
  return reg;
}

constexpr int64_t kC = 8;

// One causal_conv block built from `options` ("{kernel: 3}"), with its own parameters.
struct ConvUnderTest {
  ModelDims dims{kC, 5, 16, true, {}, {}, {}};
  ParamStore store;
  std::vector<std::unique_ptr<Block>> blocks;

  explicit ConvUnderTest(const std::string& options) {
    store.set_seed(3);
    blocks = build_blocks(YAML::Load("[{causal_conv: " + options + "}]"), "", "exp.yaml", dims, store, plugins());
    // Parameters of order 1 (the N(0, 0.02) init would hide a wrong tap in round-off).
    uint64_t seed = 10;
    for (Parameter* p : store.all()) p->value().copy_from(random_tensor(p->value().shape(), seed++));
  }
  const Block& block() const { return *blocks[0]; }
  Var run(const Var& x) const {
    BlockInput in;
    in.B = x.dim(0);
    in.T = x.dim(1);
    return block().forward(x, in);
  }
};

// y[b,t,o] = bias[o] + sum_{k, c in o's group} w[o, c, k] x[b, t-(K-1)+k, c], zeros before 0.
std::vector<double> naive_conv(const Tensor& x, const Tensor& w, const Tensor* bias, int64_t groups) {
  const int64_t B = x.dim(0), T = x.dim(1), C = x.dim(2), cg = C / groups, K = w.dim(2);
  std::vector<double> y(static_cast<size_t>(B * T * C));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t o = 0; o < C; ++o) {
        double s = bias ? (*bias)[o] : 0.0;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t ts = t - (K - 1) + k;
          if (ts < 0) continue;
          for (int64_t c = 0; c < cg; ++c)
            s += static_cast<double>(w[(o * cg + c) * K + k]) * x[(b * T + ts) * C + (o / cg) * cg + c];
        }
        y[static_cast<size_t>((b * T + t) * C + o)] = s;
      }
  return y;
}

// max |got - want| over the largest |want|.
double max_rel_diff(const Tensor& got, const std::vector<double>& want) {
  double d = 0, scale = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    d = std::max(d, std::fabs(got[i] - want[static_cast<size_t>(i)]));
    scale = std::max(scale, std::fabs(want[static_cast<size_t>(i)]));
  }
  return d / scale;
}

}  // namespace

TEST_CASE("causal_conv: forward equals a naive loop (depthwise, grouped, full; with and without bias)") {
  struct Case {
    std::string options;
    int64_t groups, K;
    bool bias;
  };
  for (Case c : {Case{"{}", kC, 4, true}, Case{"{kernel: 3, groups: 2}", 2, 3, true},
                 Case{"{kernel: 2, groups: 1, bias: false}", 1, 2, false}, Case{"{kernel: 1}", kC, 1, true}}) {
    CAPTURE(c.options);
    ConvUnderTest conv(c.options);
    const Tensor& w = conv.store.get("conv.weight").value();
    CHECK(w.shape() == Shape{kC, kC / c.groups, c.K});
    CHECK((conv.store.find("conv.bias") != nullptr) == c.bias);
    Tensor x = random_tensor({2, 7, kC}, 1);
    NoGrad no_grad;
    Tensor y = conv.run(tape().leaf(x)).value().clone();
    tape().reset();
    const Tensor* bias = c.bias ? &conv.store.get("conv.bias").value() : nullptr;
    CHECK(max_rel_diff(y, naive_conv(x, w, bias, c.groups)) < 1e-5);
  }
}

TEST_CASE("causal_conv: gradients through the block (input by the checker, parameters by finite differences)") {
  for (std::string options : {"{kernel: 3}", "{kernel: 3, groups: 2}"}) {
    CAPTURE(options);
    ConvUnderTest conv(options);
    Tensor x = random_tensor({2, 5, kC}, 2);
    CHECK_GRADIENTS([&](const std::vector<Var>& v) { return conv.run(v[0]); }, {x});

    // L = sum(y * R): the block's parameter gradients against 4-point central differences.
    Tensor R = random_tensor({2, 5, kC}, 4);
    auto loss = [&] {
      NoGrad no_grad;
      Tensor y = conv.run(tape().leaf(x)).value();
      double s = 0;
      for (int64_t i = 0; i < y.numel(); ++i) s += static_cast<double>(y[i]) * R[i];
      tape().reset();
      return s;
    };
    for (Parameter* p : conv.store.all()) p->zero_grad();
    tape().backward(conv.run(tape().leaf(x)), R);
    for (Parameter* p : conv.store.all()) {
      CAPTURE(p->name());
      Tensor ana = p->grad().clone();
      tape().reset();
      const double h = 1e-2;
      double worst = 0;
      for (int64_t i = 0; i < p->value().numel(); ++i) {
        float& v = p->value()[i];
        const float v0 = v;
        auto at = [&](double d) {
          v = static_cast<float>(v0 + d);
          return loss();
        };
        const double num = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h);
        v = v0;
        worst = std::max(worst, std::fabs(num - ana[i]) / (2e-3 + 1e-2 * std::fabs(num)));
      }
      CHECK(worst <= 1.0);
    }
  }
}

TEST_CASE("causal_conv: the recurrent form (a ring of the last kernel-1 inputs) equals the parallel form") {
  for (std::string options : {"{}", "{kernel: 3, groups: 2}", "{kernel: 2, groups: 1, bias: false}", "{kernel: 1}"}) {
    CAPTURE(options);
    ConvUnderTest conv(options);
    const int64_t B = 3, T = 9;
    Tensor x = random_tensor({B, T, kC}, 5);
    NoGrad no_grad;
    Tensor want = conv.run(tape().leaf(x)).value().clone();
    const int64_t K = conv.store.get("conv.weight").value().dim(2);

    RecurrentState state(B);
    conv.block().init_state(state);
    CHECK(state.slots() == 1);
    CHECK(state.bytes() == static_cast<size_t>(B * (K - 1) * kC) * sizeof(float));
    double worst = 0;
    for (int64_t t = 0; t < T; ++t) {
      Tensor xt = tape().alloc({B, 1, kC});
      for (int64_t b = 0; b < B; ++b)
        for (int64_t c = 0; c < kC; ++c) xt[b * kC + c] = x[(b * T + t) * kC + c];
      BlockInput in;
      in.B = B;
      in.T = 1;
      in.pos0 = t;
      in.state = &state;
      state.begin_step();
      Tensor y = conv.block().forward(tape().leaf(xt), in).value();
      state.end_step();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t c = 0; c < kC; ++c)
          worst = std::max(worst, static_cast<double>(std::fabs(y[b * kC + c] - want[(b * T + t) * kC + c])));
      tape().reset();  // the ring lives outside the tape
    }
    CHECK(worst < 1e-6);
    CHECK(state.pos() == T);
  }
}

TEST_CASE("causal_conv: bad options name the position and the valid choices") {
  auto error_of = [](const std::string& options) -> std::string {
    try {
      ConvUnderTest conv(options);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  std::string e = error_of("{groups: 3}");
  CHECK(e.find("exp.yaml:1:16: causal_conv: groups 3 must be >= 1 and divide d_model 8") != std::string::npos);
  e = error_of("{kernel: 0}");
  CHECK(e.find("causal_conv: kernel must be >= 1, got 0") != std::string::npos);
  e = error_of("{kernal: 3}");
  CHECK(e.find("block 'causal_conv' has no option 'kernal'; valid options: bias, groups, kernel, name") !=
        std::string::npos);
}
