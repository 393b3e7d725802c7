// The plugin conformance suite. It runs on every plugin found on the search path (the bundled
// folder and NANOATTN_PLUGIN_PATH, so an out-of-tree plugin is tested by pointing the variable
// at it), in every declared test variant and every mode the plugin supports:
//   - finite-difference gradients of the input and of every declared parameter (gradcheck
//     defaults, see gradcheck.h, skipping elements that sit at a kink of a relu-type map);
//   - agreement with the plugin's naive reference, forward and gradients (1e-5 relative
//     to the largest magnitude: both are float32 sums of the same terms in another order);
//   - causality: changing tokens after t changes no output at <= t, bitwise;
//   - for recurrent plugins: step-by-step == parallel forward to 1e-5 of the largest output
//     (see the test), and a state whose size does not grow.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "conformance.h"

using namespace na;
using namespace na::testing;

namespace {

Tensor forward_value(Instance& in, const Tensor& x, bool use_reference = false) {
  NoGrad no_grad;
  std::vector<Var> vars{tape().leaf(x)};
  for (const Tensor& t : in.param_values) vars.push_back(tape().leaf(t));
  ParamSet p = param_set(in.specs, vars, 1);
  Tensor y = (use_reference ? in.attention->reference(vars[0], p, {}) : in.attention->forward(vars[0], p, {}))
                 .value()
                 .clone();
  tape().reset();
  return y;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(double(t[i])));
  return m;
}

Fn attention_fn(Instance& in, bool use_reference) {
  return [&in, use_reference](const std::vector<Var>& v) {
    ParamSet p = param_set(in.specs, v, 1);
    return use_reference ? in.attention->reference(v[0], p, {}) : in.attention->forward(v[0], p, {});
  };
}

std::vector<Tensor> inputs_of(const Instance& in, const Tensor& x) {
  std::vector<Tensor> inputs{x};
  inputs.insert(inputs.end(), in.param_values.begin(), in.param_values.end());
  return inputs;
}

}  // namespace

TEST_CASE("conformance: the bundled plugins are discovered") {
  CHECK(registry().has("softmax"));
  CHECK(registry().has("linear"));
  for (const RejectedPlugin& r : registry().rejected()) MESSAGE("skipped " << r.path << ": " << r.reason);
  for (const PluginCase& c : plugin_cases()) std::printf("conformance case: %s\n", c.label.c_str());
}

TEST_CASE("conformance: gradients of the input and every declared parameter") {
  for (const PluginCase& c : plugin_cases()) {
    INFO(c.label);
    Instance in = instantiate(c, 16, 2, 5, 11);
    GradCheck opt;
    opt.skip_kinks = true;  // relu-type feature maps have kinks; smooth ones skip few or none
    opt.kink_tol = 0.02;
    opt.max_skipped = 0.25;  // dpfp: every feature is a product of two relus
    auto result = gradcheck(attention_fn(in, false), inputs_of(in, random_tensor({2, 5, 16}, 1)), opt);
    INFO(result.report);
    CHECK(result.ok);
  }
}

TEST_CASE("conformance: agreement with the naive reference") {
  for (const PluginCase& c : plugin_cases()) {
    INFO(c.label);
    Instance in = instantiate(c, 16, 2, 24, 12);
    Tensor x = random_tensor({2, 24, 16}, 2);
    std::vector<Tensor> inputs = inputs_of(in, x);
    Agreement a = compare(attention_fn(in, false), attention_fn(in, true), inputs);
    CHECK(a.out_rel <= 1e-5);
    // Measured <= 4e-7 for both with OpenBLAS's Prescott, Haswell, SkylakeX and Cooperlake kernels.
    CHECK(a.grad_rel <= 1e-5);
    MESSAGE(c.label << ": max |fused - reference| / largest |reference|: output " << a.out_rel << ", gradient "
                    << a.grad_rel);
  }
}

TEST_CASE("conformance: causal plugins never look ahead") {
  const int64_t T = 12;
  for (const PluginCase& c : plugin_cases()) {
    if (!c.causal) continue;
    INFO(c.label);
    Instance in = instantiate(c, 16, 2, T, 13);
    Tensor x = random_tensor({2, T, 16}, 3);
    Tensor y = forward_value(in, x);
    for (int64_t t0 : {0, 4, 10}) {
      CAPTURE(t0);
      Tensor x2 = x.clone(), future = random_tensor({2, T, 16}, 100 + t0);
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t t = t0 + 1; t < T; ++t)
          for (int64_t ch = 0; ch < 16; ++ch) x2[(b * T + t) * 16 + ch] = future[(b * T + t) * 16 + ch];
      Tensor y2 = forward_value(in, x2);
      bool past_same = true, future_changed = false;
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t ch = 0; ch < 16; ++ch) {
            int64_t i = (b * T + t) * 16 + ch;
            bool same = std::memcmp(&y[i], &y2[i], sizeof(float)) == 0;
            if (t <= t0) past_same = past_same && same;
            else future_changed = future_changed || !same;
          }
      CHECK(past_same);
      CHECK(future_changed);  // the perturbation did reach the model
    }
  }
}

TEST_CASE("conformance: recurrent form equals the parallel forward") {
  for (const PluginCase& c : plugin_cases()) {
    if (!c.causal || !c.plugin->info->capabilities.recurrent) continue;
    for (int64_t T : {64, 512}) {
      INFO(c.label << " T=" << T);
      const int64_t B = 2, C = 16;
      Instance in = instantiate(c, C, 2, T, 14);
      Tensor x = random_tensor({B, T, C}, 4);
      Tensor parallel = forward_value(in, x);
      std::vector<Parameter> owned;
      for (size_t i = 0; i < in.specs.size(); ++i) owned.emplace_back(in.specs[i].name, in.param_values[i]);
      ParamSet p;
      for (const Parameter& q : owned) p.add(q.name(), q.var());

      NoGrad no_grad;
      std::unique_ptr<AttentionState> state = in.attention->init_state(B);
      size_t bytes_first = 0;
      double worst = 0;
      for (int64_t t = 0; t < T; ++t) {
        Tensor xt = Tensor::empty({B, C});
        for (int64_t b = 0; b < B; ++b) std::memcpy(xt.data() + b * C, x.data() + (b * T + t) * C, C * sizeof(float));
        Tensor yt = in.attention->step(*state, tape().leaf(xt), p).value();
        REQUIRE(yt.shape() == Shape{B, C});
        for (int64_t b = 0; b < B; ++b)
          for (int64_t ch = 0; ch < C; ++ch)
            worst = std::max(worst, std::fabs(double(yt[b * C + ch]) - parallel[(b * T + t) * C + ch]));
        tape().reset();
        if (t == 0) bytes_first = state->bytes();
      }
      double scale = max_abs(parallel);
      MESSAGE(c.label << " T=" << T << ": max |step - parallel| " << worst << " with outputs up to " << scale
                      << ", state " << state->bytes() << " bytes");
      // Both forms make the same sums in the same order, but the projections are products of
      // B rows in one and B*T rows in the other, which BLAS may block differently: each
      // projected value then differs by up to ~C u (C = 16 terms, u = 6e-8 rounding), about
      // 1e-6 relative, and the outputs by a few times that (measured up to 1.6e-7 of the
      // largest output, with OpenBLAS's Haswell kernels). A dropped or extra token moves
      // outputs by ~1/T of their size (>= 2e-3 here), far above this bound.
      CHECK(scale > 0.2);  // outputs are not all ~0, so a bound relative to them means something
      CHECK(worst <= 1e-5 * scale);
      CHECK(state->bytes() == bytes_first);
      CHECK(bytes_first > 0);
    }
  }
}
