// Finite-difference gradient checker shared by every op test, every plugin test and
// `nanoattn check-plugin` (part of the installed nanoattn_testing library; nanoattn/testing.h
// adds doctest macros around it).
//
// For f: inputs -> out, it checks the tape's gradient of L = sum(out * R) (R a fixed random
// tensor, so every output element matters with a distinct weight) against a 4-point central
// difference of L, for every element of every differentiable input:
//   num = (8 (L(x+h) - L(x-h)) - (L(x+2h) - L(x-2h))) / (12 h)      error O(h^4)
// and fails when |num - ana| > atol + rtol * |num| anywhere. L is summed in double, so the
// float32 noise in num is about 1e-7 * |L| / h. Defaults (h 1e-2, atol 2e-3, rtol 1e-2) catch a
// dropped term, a wrong sign or a transposed gradient; per-op tolerances are documented next
// to each test that changes them.
//
// It also checks that backward accumulates (a gradient already present is added to, not
// overwritten) and that two backward passes give bitwise-equal gradients.
//
// thread_invariance runs the same forward + backward with 1 worker thread and with 2 and
// checks that the output and every input gradient have the same bits (CHECK_THREAD_INVARIANT).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "nanoattn/core.h"

namespace na::testing {

struct GradCheck {
  double h = 1e-2;
  double atol = 2e-3;
  double rtol = 1e-2;
  // For functions with kinks (relu feature maps) or near-singular points: skip an element
  // whose slopes over [-2h, 2h] (central at h and 2h, one-sided at h) disagree by more than
  // kink_tol (relative), i.e. where no finite difference is meaningful; fail if more than
  // max_skipped of an input's elements are skipped. The report says how many were. An element
  // checked has the spread of its slopes added to its allowance (the estimate's uncertainty).
  bool skip_kinks = false;
  double kink_tol = 0.05;
  double max_skipped = 0.1;
  // 0: every element of every input; else at most this many per input, evenly spread (faster,
  // and still sees every gradient term that is wrong everywhere).
  int64_t max_elements = 0;
};

using Fn = std::function<Var(const std::vector<Var>&)>;

struct GradCheckResult {
  bool ok = true;
  std::string report;  // the worst element per input; the first failure in detail
  double worst = 0;    // largest |numeric - backward| / allowed over every element checked
};

// `differentiable[i]` false: input i is passed without requires_grad and not checked.
GradCheckResult gradcheck(const Fn& f, const std::vector<Tensor>& inputs,
                          const GradCheck& opt = {}, std::vector<bool> differentiable = {});

// A tensor with values uniform in [lo, hi), reproducible from seed.
Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f);
// Like random_tensor but every |value| >= margin (for ops with a kink at 0).
Tensor random_away_from_zero(const Shape& shape, uint64_t seed, float margin = 0.1f,
                             float hi = 1.0f);

// Runs f and g (the reference) on the same inputs and reports the largest differences between
// the two functions' outputs and their gradients (for fused-vs-composite checks), absolute and
// relative to the magnitude of what is compared: out_rel is max |f - g| over the output divided
// by g's largest |output|; grad_rel the same over all inputs' gradients (not input by input:
// an input whose true gradient is 0 gets rounding residue sized by the others). Check the
// relative ones: float32 rounding scales with the values rounded. NaN, a lone infinity or
// different output shapes count as an infinite difference.
struct Agreement {
  double max_out_diff = 0, max_grad_diff = 0;
  double out_rel = 0, grad_rel = 0;
};
Agreement compare(const Fn& f, const Fn& g, const std::vector<Tensor>& inputs);

// Runs forward + backward of f (backward seeded with a fixed random tensor, as gradcheck does)
// once with set_num_threads(1), then with set_num_threads(2) (three times, workers woken
// first, since whether a worker takes a chunk is up to the scheduler), and also with all
// cores when the machine has more than 2; afterwards the thread count is back to
// set_num_threads(0). ok when the outputs and every input gradient are bitwise identical
// across the runs. Give inputs large enough to span several parallel chunks, or the check
// proves nothing.
struct ThreadInvariance {
  bool ok = true;
  std::string report;  // the first differing element of the output and of each gradient
  double max_diff = 0;  // largest |difference| between runs over the output and the gradients
  // From the 1-thread run, for further checks: f's output and each input's gradient (zeros
  // for an input without one).
  Tensor output;
  std::vector<Tensor> grads;
};
// `differentiable[i]` false: input i is passed without requires_grad and has no gradient.
ThreadInvariance thread_invariance(const Fn& f, const std::vector<Tensor>& inputs,
                                   std::vector<bool> differentiable = {});

}  // namespace na::testing
