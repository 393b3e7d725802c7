#include "nanoattn/gradcheck.h"

#include <atomic>
#include <chrono>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <thread>

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

// f's output without recording (cloned: it outlives the tape reset).
Tensor forward_value(const Fn& f, const std::vector<Tensor>& inputs) {
  NoGrad no_grad;
  std::vector<bool> none(inputs.size(), false);
  Tensor out = f(leaves(inputs, none)).value().clone();
  tape().reset();
  return out;
}

// A fixed random tensor (uniform in [-1, 1), from seed) of f's output shape, to seed backward.
Tensor backward_seed(const Fn& f, const std::vector<Tensor>& inputs, uint64_t seed) {
  return random_tensor(forward_value(f, inputs).shape(), seed, -1.0f, 1.0f);
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

// "" when a and b have the same shape and bits; otherwise where they first differ (flat and
// multi-index, value and bits of both) and in how many elements.
std::string bit_difference(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return "shapes " + a.shape().str() + " vs " + b.shape().str();
  int64_t first = -1, count = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      if (first < 0) first = i;
      ++count;
    }
  if (count == 0) return "";
  auto value = [](float x) {
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g (0x%08x)", static_cast<double>(x), bits);
    return std::string(buf);
  };
  std::ostringstream os;
  os << "element " << first << " (index (";
  for (int d = 0, rest = 0; d < a.shape().rank(); ++d, rest = 1) {
    int64_t stride = a.shape().prod(d + 1, a.shape().rank());
    os << (rest ? ", " : "") << first / stride % a.shape()[d];
  }
  os << ")): " << value(a[first]) << " vs " << value(b[first]) << "; " << count << " of "
     << a.numel() << " elements differ";
  return os.str();
}

// The largest |a - b| (infinite for different shapes, NaN or a lone infinity).
double max_difference(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return INFINITY;
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, difference(a[i], b[i]));
  return m;
}

// Wakes the worker threads just before a multi-thread run: a sleeping worker often wakes only
// after the caller has done every chunk of a small op itself, and then the run proves nothing.
// Each of `threads` tasks waits (at most 100 ms) until all have started, on distinct threads.
void wake_workers(int threads) {
  std::atomic<int> started{0};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  parallel_for(threads, 1, [&](int64_t, int64_t) {
    ++started;
    while (started.load() < threads && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
  });
}

// Puts the thread count back to all cores however the scope is left.
struct AllThreadsOnExit {
  ~AllThreadsOnExit() { set_num_threads(0); }
};

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

  Tensor r = backward_seed(f, inputs, 777);

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

  // Finite differences. Rounding each float32 output (relative 6e-8) perturbs L by about
  // 6e-8 ||out * r||_2; the 4-point estimate scales that by ~1.5 / h. Three times that is
  // allowed on top of atol, so outputs of large magnitude don't fail on noise alone.
  double noise = 0;
  {
    Tensor out = forward_value(f, inputs);
    double l2 = 0;
    for (int64_t k = 0; k < out.numel(); ++k)
      if (std::isfinite(out[k])) l2 += std::pow(static_cast<double>(out[k]) * r[k], 2);
    noise = 3 * 6e-8 * 1.5 * std::sqrt(l2) / opt.h;
  }
  rep << "finite-difference noise allowance " << noise << "\n";
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!diff[i]) continue;
    std::vector<Tensor> x;
    for (const Tensor& t : inputs) x.push_back(t.clone());
    double worst = 0;
    int64_t worst_j = -1;
    double worst_num = 0, worst_ana = 0;
    bool reported = false;
    int64_t skipped = 0;
    const int64_t n = x[i].numel();
    const int64_t stride = opt.max_elements > 0 && n > opt.max_elements ? (n + opt.max_elements - 1) / opt.max_elements : 1;
    int64_t checked = 0;
    for (int64_t j = 0; j < n; j += stride) {
      ++checked;
      float orig = x[i][j];
      auto at = [&](double d) {
        x[i][j] = static_cast<float>(orig + d);
        return loss_at(f, x, r);
      };
      // Use the step actually representable in float32.
      double h = static_cast<double>(static_cast<float>(orig + opt.h)) - orig;
      double lp = at(h), lm = at(-h), d2 = at(2 * h) - at(-2 * h);
      double num = (8 * (lp - lm) - d2) / (12 * h);
      double spread = 0;
      if (opt.skip_kinks) {
        // Where f is smooth on [-2h, 2h], these four slopes agree to O(h |f''|); a kink
        // anywhere in that interval makes at least two of them differ by about its jump.
        // The 4-point estimate is a combination of them, so it is uncertain by about their
        // spread: a large spread skips the element, a small one is added to the allowance
        // (a kink too small to skip still moves the estimate; smooth f adds ~nothing).
        double l0 = at(0.0);
        double slopes[] = {(lp - lm) / (2 * h), d2 / (4 * h), (lp - l0) / h, (l0 - lm) / h};
        double lo = *std::min_element(slopes, slopes + 4), hi = *std::max_element(slopes, slopes + 4);
        spread = hi - lo;
        if (spread > opt.kink_tol * (std::fabs(lo) + std::fabs(hi)) + opt.atol) {
          ++skipped;
          x[i][j] = orig;
          continue;
        }
      }
      x[i][j] = orig;
      double a = ana[i][j];
      double err = std::fabs(num - a);
      double allowed = opt.atol + noise + opt.rtol * std::fabs(num) + spread;
      if (err / allowed > worst) worst = err / allowed, worst_j = j, worst_num = num, worst_ana = a;
      res.worst = std::max(res.worst, err / allowed);
      if (err > allowed && !reported) {
        res.ok = false;
        reported = true;
        rep << "input " << i << " " << inputs[i].shape() << " element " << j
            << ": finite difference " << num << ", backward " << a << ", |diff| " << err
            << " > allowed " << allowed << "\n";
      }
    }
    rep << "input " << i << ": worst error/allowed " << worst << " at element " << worst_j
        << " (numeric " << worst_num << ", backward " << worst_ana << ")";
    if (opt.skip_kinks) rep << ", " << skipped << " of " << checked << " elements skipped at kinks";
    rep << "\n";
    if (skipped > opt.max_skipped * checked) {
      res.ok = false;
      rep << "input " << i << ": too many elements (" << skipped << ") sit at kinks to check\n";
    }
  }
  res.report = rep.str();
  return res;
}

Agreement compare(const Fn& f, const Fn& g, const std::vector<Tensor>& inputs) {
  std::vector<bool> diff(inputs.size(), true);
  Tensor r = backward_seed(f, inputs, 4242);
  Tensor of, og;
  std::vector<Tensor> gf = analytic(f, inputs, diff, r, nullptr, &of);
  std::vector<Tensor> gg = analytic(g, inputs, diff, r, nullptr, &og);
  if (of.shape() != og.shape()) return {INFINITY, INFINITY, INFINITY, INFINITY};
  // Folds a pair of tensors into the largest |f - g| and g's largest finite |value|.
  auto fold = [](const Tensor& f_t, const Tensor& g_t, double& diff, double& scale) {
    for (int64_t i = 0; i < f_t.numel(); ++i) {
      diff = std::max(diff, difference(f_t[i], g_t[i]));
      if (std::isfinite(g_t[i])) scale = std::max(scale, std::fabs(static_cast<double>(g_t[i])));
    }
  };
  auto rel = [](double diff, double scale) { return diff == 0 ? 0.0 : diff / scale; };  // / 0: inf
  Agreement a;
  double out_scale = 0, grad_scale = 0;
  fold(of, og, a.max_out_diff, out_scale);
  for (size_t i = 0; i < gf.size(); ++i) fold(gf[i], gg[i], a.max_grad_diff, grad_scale);
  a.out_rel = rel(a.max_out_diff, out_scale);
  a.grad_rel = rel(a.max_grad_diff, grad_scale);
  return a;
}

ThreadInvariance thread_invariance(const Fn& f, const std::vector<Tensor>& inputs,
                                   std::vector<bool> diff) {
  if (diff.empty()) diff.assign(inputs.size(), true);
  AllThreadsOnExit restore;
  set_num_threads(0);
  const int all = num_threads();
  // Whether a worker takes any chunk of a small op is up to the scheduler, so the 2-thread
  // run is repeated: a thread-dependent result is then caught more reliably.
  std::vector<int> counts = {1, 2, 2, 2};
  if (all > 2) counts.push_back(all);
  Tensor r = backward_seed(f, inputs, 31337);

  ThreadInvariance res;
  std::ostringstream rep;
  for (int threads : counts) {
    set_num_threads(threads);
    if (threads > 1) wake_workers(threads);
    Tensor out;
    std::vector<Tensor> grads = analytic(f, inputs, diff, r, nullptr, &out);
    if (threads == 1) {
      res.output = out;
      res.grads = grads;
      continue;
    }
    res.max_diff = std::max(res.max_diff, max_difference(res.output, out));
    std::string d = bit_difference(res.output, out);
    if (!d.empty()) {
      res.ok = false;
      rep << "1 vs " << threads << " threads: output differs at " << d << "\n";
    }
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!diff[i]) continue;
      res.max_diff = std::max(res.max_diff, max_difference(res.grads[i], grads[i]));
      d = bit_difference(res.grads[i], grads[i]);
      if (!d.empty()) {
        res.ok = false;
        rep << "1 vs " << threads << " threads: gradient of input " << i << " "
            << inputs[i].shape() << " differs at " << d << "\n";
      }
    }
    if (!res.ok) break;  // one run's differences are the report
  }
  if (res.ok) {
    rep << "output " << res.output.shape() << " and the gradients bitwise identical for threads";
    for (int t : counts) rep << " " << t;
    rep << "\n";
  }
  res.report = rep.str();
  return res;
}

}  // namespace na::testing
