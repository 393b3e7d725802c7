// The conformance checks themselves (see nanoattn/conformance.h for what each one measures).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "nanoattn/conformance.h"
#include "nanoattn/gradcheck.h"

namespace na::testing {

namespace {

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

Tensor forward_value(Instance& in, const Tensor& x) {
  NoGrad no_grad;
  std::vector<Var> vars{tape().leaf(x)};
  for (const Tensor& t : in.param_values) vars.push_back(tape().leaf(t));
  Tensor y = in.attention->forward(vars[0], param_set(in.specs, vars, 1), {}).value().clone();
  tape().reset();
  return y;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(double(t[i])));
  return m;
}

CheckResult result(std::string check, const ConformanceCase& c, double error, double bound, bool ok,
                   std::string detail) {
  return {std::move(check), c.label, error, bound, ok, ok ? "" : std::move(detail)};
}

}  // namespace

CheckResult check_gradients(const PluginUnderTest& p, const ConformanceCase& c, const ConformanceOptions& o) {
  Instance in = instantiate(p, c, 16, 2, 5, 11);
  GradCheck opt;
  opt.skip_kinks = true;  // relu-type feature maps have kinks; smooth ones skip few or none
  opt.kink_tol = 0.02;
  opt.max_skipped = 0.25;  // dpfp: every feature is a product of two relus
  if (o.quick) opt.max_elements = 48;
  GradCheckResult g = gradcheck(attention_fn(in, false), inputs_of(in, random_tensor({2, 5, 16}, 1)), opt);
  std::string names = "inputs: 0 = x (2, 5, 16)";
  for (size_t i = 0; i < in.specs.size(); ++i) names += cat(", ", i + 1, " = ", in.specs[i].name);
  return result("gradient", c, g.worst, 1.0, g.ok,
                "the backward disagrees with finite differences of the forward (" + names + "):\n" + g.report);
}

CheckResult check_reference(const PluginUnderTest& p, const ConformanceCase& c) {
  Instance in = instantiate(p, c, 16, 2, 24, 12);
  Agreement a = compare(attention_fn(in, false), attention_fn(in, true), inputs_of(in, random_tensor({2, 24, 16}, 2)));
  // Measured <= 4e-7 for the bundled plugins with OpenBLAS's Prescott, Haswell, SkylakeX and
  // Cooperlake kernels: both are float32 sums of the same terms in another order.
  const double bound = 1e-5, worst = std::max(a.out_rel, a.grad_rel);
  return result("reference", c, worst, bound, worst <= bound,
                cat("forward and reference differ: max |difference| / largest |reference| is ", a.out_rel,
                    " over the outputs and ", a.grad_rel, " over the gradients (bound ", bound, ")"));
}

CheckResult check_causality(const PluginUnderTest& p, const ConformanceCase& c) {
  const int64_t B = 2, T = 12, C = 16;
  Instance in = instantiate(p, c, C, 2, T, 13);
  Tensor x = random_tensor({B, T, C}, 3);
  Tensor y = forward_value(in, x);
  double leak = 0;
  std::string detail;
  for (int64_t t0 : {0, 4, 10}) {
    Tensor x2 = x.clone(), future = random_tensor({B, T, C}, 100 + t0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = t0 + 1; t < T; ++t)
        for (int64_t ch = 0; ch < C; ++ch) x2[(b * T + t) * C + ch] = future[(b * T + t) * C + ch];
    Tensor y2 = forward_value(in, x2);
    bool future_changed = false;
    int64_t first_leak = -1;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t ch = 0; ch < C; ++ch) {
          int64_t i = (b * T + t) * C + ch;
          bool same = std::memcmp(&y[i], &y2[i], sizeof(float)) == 0;
          if (t > t0) future_changed = future_changed || !same;
          else if (!same) {
            leak = std::max(leak, std::fabs(double(y[i]) - y2[i]));
            if (first_leak < 0) first_leak = t;
          }
        }
    if (first_leak >= 0 && detail.empty())
      detail = cat("changing the tokens after t = ", t0, " changed the output at t = ", first_leak,
                   ": the causal form looks ahead");
    if (!future_changed && detail.empty())
      detail = cat("changing the tokens after t = ", t0, " changed no later output either, so the check proves "
                   "nothing: does the output depend on the input?");
  }
  return result("causality", c, leak, 0.0, detail.empty(), detail);
}

std::vector<CheckResult> check_recurrent(const PluginUnderTest& p, const ConformanceCase& c,
                                         const ConformanceOptions& o) {
  std::vector<CheckResult> out;
  std::vector<int64_t> lengths = {64};
  if (!o.quick) lengths.push_back(512);
  for (int64_t T : lengths) {
    const int64_t B = 2, C = 16;
    Instance in = instantiate(p, c, C, 2, T, 14);
    Tensor x = random_tensor({B, T, C}, 4);
    Tensor parallel = forward_value(in, x);
    // step() runs without a tape, as generation does: parameters are long-lived leaves.
    std::vector<Parameter> owned;
    for (size_t i = 0; i < in.specs.size(); ++i) owned.emplace_back(in.specs[i].name, in.param_values[i]);
    ParamSet ps;
    for (const Parameter& q : owned) ps.add(q.name(), q.var());

    NoGrad no_grad;
    std::unique_ptr<AttentionState> state = in.attention->init_state(B);
    size_t bytes_first = 0;
    double worst = 0;
    int64_t worst_t = -1;
    std::string shape_problem;
    for (int64_t t = 0; t < T && shape_problem.empty(); ++t) {
      Tensor xt = Tensor::empty({B, C});
      for (int64_t b = 0; b < B; ++b) std::memcpy(xt.data() + b * C, x.data() + (b * T + t) * C, C * sizeof(float));
      Tensor yt = in.attention->step(*state, tape().leaf(xt), ps).value();
      if (yt.shape() != Shape{B, C}) {
        shape_problem = cat("step returned ", yt.shape(), ", not (B, C) = (", B, ", ", C, ")");
        break;
      }
      for (int64_t b = 0; b < B; ++b)
        for (int64_t ch = 0; ch < C; ++ch) {
          double d = std::fabs(double(yt[b * C + ch]) - parallel[(b * T + t) * C + ch]);
          if (!(d <= worst)) worst = std::isnan(d) ? INFINITY : d, worst_t = t;
        }
      tape().reset();
      if (t == 0) bytes_first = state->bytes();
    }
    // The projections are products of B rows in one form and B*T rows in the other, which BLAS
    // may block differently: each projected value then differs by ~C u (C = 16 terms, u = 6e-8),
    // the outputs by a few times that (measured up to 1.6e-7 of the largest output). A dropped
    // or extra token moves outputs by ~1/T of their size (>= 2e-3 here), far above the bound.
    const double scale = max_abs(parallel), bound = 1e-5;
    const double rel = scale > 0 ? worst / scale : INFINITY;
    std::string variant = c.label + cat(" T=", T);
    std::string detail = !shape_problem.empty() ? shape_problem
                         : scale <= 0.2
                             ? cat("the parallel outputs are all below 0.2 (largest ", scale,
                                   "), so a bound relative to them means nothing")
                             : cat("step() and the parallel forward differ by up to ", worst, " (", rel,
                                   " of the largest output ", scale, "), first worst at token ", worst_t);
    bool ok = shape_problem.empty() && scale > 0.2 && rel <= bound;
    out.push_back({"recurrent", variant, rel, bound, ok, ok ? "" : detail});
    const size_t bytes_last = state->bytes();
    // An RNN holds constant memory; a KV cache holds T rows after T tokens: exactly T times one.
    const bool kv_cache = !p.capabilities().recurrent;
    const double expected = kv_cache ? double(bytes_first) * double(T) : double(bytes_first);
    const double growth = double(bytes_last) - expected;
    bool bytes_ok = bytes_first > 0 && growth == 0.0;
    out.push_back({"state_bytes", variant, growth, 0.0, bytes_ok,
                   bytes_ok ? ""
                   : bytes_first == 0
                       ? cat("bytes() was 0 after the first token: report the memory the state holds")
                       : cat("bytes() was ", bytes_first, " after the first token and ", bytes_last, " after ", T,
                             kv_cache ? cat(": a KV cache should report the rows it holds, ", T, " x the first")
                                      : std::string(": the RNN form must hold constant memory per sequence"))});
  }
  return out;
}

CheckResult check_thread_invariance(const PluginUnderTest& p, const ConformanceCase& c) {
  // B * H = 6 (batch, head) pairs and 40 tokens: several parallel chunks in every kernel.
  const int64_t B = 3, T = 40, C = 16, H = 2;
  Instance in = instantiate(p, c, C, H, T, 15);
  ThreadInvariance ti = thread_invariance(attention_fn(in, false), inputs_of(in, random_tensor({B, T, C}, 5)));
  return result("threads", c, ti.max_diff, 0.0, ti.ok,
                "1 and 2 threads give different bits (use fixed chunking and a fixed reduction order):\n" + ti.report);
}

std::vector<CheckResult> check_conformance(const PluginUnderTest& p, const std::vector<ConformanceCase>& cases,
                                           const ConformanceOptions& o) {
  std::vector<CheckResult> out{check_options(*p.info)};
  // A check that throws fails with the message; the others still run.
  auto guarded = [&](const char* name, const ConformanceCase& c, auto&& run) {
    try {
      run();
    } catch (const std::exception& e) {
      tape().reset();  // whatever the check had recorded
      out.push_back({name, c.label, INFINITY, 0.0, false, cat("threw: ", e.what())});
    }
  };
  for (const ConformanceCase& c : cases) {
    guarded("gradient", c, [&] { out.push_back(check_gradients(p, c, o)); });
    guarded("reference", c, [&] { out.push_back(check_reference(p, c)); });
    if (c.causal) guarded("causality", c, [&] { out.push_back(check_causality(p, c)); });
    if (c.causal && (p.capabilities().recurrent || p.capabilities().kv_cache))
      guarded("recurrent", c, [&] {
        for (CheckResult& r : check_recurrent(p, c, o)) out.push_back(std::move(r));
      });
    guarded("threads", c, [&] { out.push_back(check_thread_invariance(p, c)); });
  }
  return out;
}

}  // namespace na::testing
