// Finite-difference gradient checker shared by every op test and every plugin test.
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
};

using Fn = std::function<Var(const std::vector<Var>&)>;

struct GradCheckResult {
  bool ok = true;
  std::string report;  // the worst element per input; the first failure in detail
};

// `differentiable[i]` false: input i is passed without requires_grad and not checked.
GradCheckResult gradcheck(const Fn& f, const std::vector<Tensor>& inputs,
                          const GradCheck& opt = {}, std::vector<bool> differentiable = {});

// A tensor with values uniform in [lo, hi), reproducible from seed.
Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f);
// Like random_tensor but every |value| >= margin (for ops with a kink at 0).
Tensor random_away_from_zero(const Shape& shape, uint64_t seed, float margin = 0.1f,
                             float hi = 1.0f);

// Runs f and g on the same inputs and reports the largest differences between the two
// functions' outputs and their gradients (for fused-vs-composite checks). NaN, a lone
// infinity or different output shapes count as an infinite difference.
struct Agreement {
  double max_out_diff = 0, max_grad_diff = 0;
};
Agreement compare(const Fn& f, const Fn& g, const std::vector<Tensor>& inputs);

}  // namespace na::testing

// In a doctest case: CHECK_GRADIENTS(f, inputs[, options[, differentiable]]).
#define CHECK_GRADIENTS(...)                                      \
  do {                                                            \
    auto gc_result_ = ::na::testing::gradcheck(__VA_ARGS__);      \
    INFO(gc_result_.report);                                      \
    CHECK(gc_result_.ok);                                         \
  } while (0)
