#include "gradcheck.h"

#include <cmath>
#include <cstring>
#include <sstream>

namespace na::testing {

namespace {

// Non-finite outputs (e.g. -inf at masked log-softmax entries) are left out: they carry no
// gradient, and the same elements are non-finite at every perturbation.
double weighted_sum(const Tensor& out, const Tensor& r) {
  double s = 0;
  for (int64_t i = 0; i < out.numel(); ++i)
    if (std::isfinite(out[i])) s += static_cast<double>(out[i]) * r[i];
  return s;
}

// |a - b|, where equal infinities differ by 0 and a NaN or a lone infinity by +inf.
double difference(float a, float b) {
  if (a == b) return 0.0;
  double d = std::fabs(static_cast<double>(a) - b);
  return std::isnan(d) ? INFINITY : d;
}

// Makes leaves for the inputs on the current tape (values cloned so f may not alias them).
std::vector<Var> leaves(const std::vector<Tensor>& inputs, const std::vector<bool>& diff) {
  std::vector<Var> vars;
  for (size_t i = 0; i < inputs.size(); ++i) vars.push_back(tape().leaf(inputs[i].clone(), diff[i]));
  return vars;
}

// Forward + backward with seed r; returns each differentiable input's gradient (cloned).
// `preset` (optional) is placed in the gradients before backward to test accumulation.
std::vector<Tensor> analytic(const Fn& f, const std::vector<Tensor>& inputs,
                             const std::vector<bool>& diff, const Tensor& r,
                             const std::vector<Tensor>* preset, Tensor* out_value) {
  tape().reset();
  std::vector<Var> vars = leaves(inputs, diff);
  if (preset)
    for (size_t i = 0; i < vars.size(); ++i)
      if (diff[i]) vars[i].grad_acc().copy_from((*preset)[i]);
  Var out = f(vars);
  if (out_value) *out_value = out.value().clone();
  tape().backward(out, r);
  std::vector<Tensor> grads;
  for (size_t i = 0; i < vars.size(); ++i)
    grads.push_back(diff[i] && vars[i].has_grad() ? vars[i].grad().clone()
                                                  : Tensor::zeros(inputs[i].shape()));
  tape().reset();
  return grads;
}

double loss_at(const Fn& f, const std::vector<Tensor>& inputs, const Tensor& r) {
  NoGrad no_grad;
  std::vector<bool> none(inputs.size(), false);
  std::vector<Var> vars = leaves(inputs, none);
  double l = weighted_sum(f(vars).value(), r);
  tape().reset();
  return l;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return false;
  return true;
}

}  // namespace

Tensor random_tensor(const Shape& shape, uint64_t seed, float lo, float hi) {
  Tensor t = Tensor::empty(shape);
  fill_uniform(t, Rng::mix(seed, 12345), lo, hi);
  return t;
}

Tensor random_away_from_zero(const Shape& shape, uint64_t seed, float margin, float hi) {
  Tensor t = random_tensor(shape, seed, -1.0f, 1.0f);
  for (int64_t i = 0; i < t.numel(); ++i) {
    float mag = margin + (hi - margin) * std::fabs(t[i]);
    t[i] = t[i] < 0 ? -mag : mag;
  }
  return t;
}

GradCheckResult gradcheck(const Fn& f, const std::vector<Tensor>& inputs, const GradCheck& opt,
                          std::vector<bool> diff) {
  if (diff.empty()) diff.assign(inputs.size(), true);
  GradCheckResult res;
  std::ostringstream rep;

  Tensor shape_probe;
  {
    NoGrad no_grad;
    std::vector<bool> none(inputs.size(), false);
    shape_probe = f(leaves(inputs, none)).value().clone();
    tape().reset();
  }
  Tensor r = random_tensor(shape_probe.shape(), 777, -1.0f, 1.0f);

  std::vector<Tensor> ana = analytic(f, inputs, diff, r, nullptr, nullptr);

  // Determinism: a second pass gives the same bits.
  std::vector<Tensor> again = analytic(f, inputs, diff, r, nullptr, nullptr);
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!bitwise_equal(ana[i], again[i])) {
      res.ok = false;
      rep << "input " << i << ": two backward passes gave different gradients\n";
    }

  // Accumulation: with a preset gradient P the result must be P + ana.
  std::vector<Tensor> preset;
  for (size_t i = 0; i < inputs.size(); ++i) preset.push_back(random_tensor(inputs[i].shape(), 99 + i));
  std::vector<Tensor> acc = analytic(f, inputs, diff, r, &preset, nullptr);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!diff[i]) continue;
    for (int64_t j = 0; j < acc[i].numel(); ++j) {
      double want = static_cast<double>(preset[i][j]) + ana[i][j];
      if (std::fabs(acc[i][j] - want) > 1e-5 * (1 + std::fabs(want))) {
        res.ok = false;
        rep << "input " << i << " element " << j << ": backward overwrote instead of "
            << "accumulating (got " << acc[i][j] << ", want preset + grad = " << want << ")\n";
        break;
      }
    }
  }

  // Finite differences.
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!diff[i]) continue;
    std::vector<Tensor> x;
    for (const Tensor& t : inputs) x.push_back(t.clone());
    double worst = 0;
    int64_t worst_j = -1;
    double worst_num = 0, worst_ana = 0;
    bool reported = false;
    for (int64_t j = 0; j < x[i].numel(); ++j) {
      float orig = x[i][j];
      auto at = [&](double d) {
        x[i][j] = static_cast<float>(orig + d);
        return loss_at(f, x, r);
      };
      // Use the step actually representable in float32.
      double h = static_cast<double>(static_cast<float>(orig + opt.h)) - orig;
      double num = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h);
      x[i][j] = orig;
      double a = ana[i][j];
      double err = std::fabs(num - a);
      double allowed = opt.atol + opt.rtol * std::fabs(num);
      if (err / allowed > worst) worst = err / allowed, worst_j = j, worst_num = num, worst_ana = a;
      if (err > allowed && !reported) {
        res.ok = false;
        reported = true;
        rep << "input " << i << " " << inputs[i].shape() << " element " << j
            << ": finite difference " << num << ", backward " << a << ", |diff| " << err
            << " > allowed " << allowed << "\n";
      }
    }
    rep << "input " << i << ": worst error/allowed " << worst << " at element " << worst_j
        << " (numeric " << worst_num << ", backward " << worst_ana << ")\n";
  }
  res.report = rep.str();
  return res;
}

Agreement compare(const Fn& f, const Fn& g, const std::vector<Tensor>& inputs) {
  std::vector<bool> diff(inputs.size(), true);
  Tensor probe;
  {
    NoGrad no_grad;
    std::vector<bool> none(inputs.size(), false);
    probe = f(leaves(inputs, none)).value().clone();
    tape().reset();
  }
  Tensor r = random_tensor(probe.shape(), 4242);
  Tensor of, og;
  std::vector<Tensor> gf = analytic(f, inputs, diff, r, nullptr, &of);
  std::vector<Tensor> gg = analytic(g, inputs, diff, r, nullptr, &og);
  Agreement a;
  if (of.shape() != og.shape()) return {INFINITY, INFINITY};
  for (int64_t i = 0; i < of.numel(); ++i) a.max_out_diff = std::max(a.max_out_diff, difference(of[i], og[i]));
  for (size_t i = 0; i < gf.size(); ++i)
    for (int64_t j = 0; j < gf[i].numel(); ++j)
      a.max_grad_diff = std::max(a.max_grad_diff, difference(gf[i][j], gg[i][j]));
  return a;
}

}  // namespace na::testing
