// Gradient clipping by global L2 norm, as PyTorch's torch.nn.utils.clip_grad_norm_.
#pragma once
#include <cmath>
#include <vector>

#include "nanoattn/tape.h"

namespace na {

// The L2 norm of all the parameters' gradients taken together, accumulated in double over
// fixed chunks combined in a fixed order: the same bits for any thread count.
double grad_norm(const std::vector<Parameter*>& params);

// Computes the global norm; with coef = max_norm / (norm + 1e-6), scales every gradient by
// coef when coef < 1 (PyTorch clamps coef to 1, so the only difference is skipping a no-op
// multiply). A non-finite norm is returned unscaled for the caller to report. Returns the
// norm before clipping.
double clip_grad_norm(const std::vector<Parameter*>& params, double max_norm);

// Whether clip_grad_norm scaled the gradients of a step whose norm was `norm` (max_norm 0: no
// clipping). The one place that condition is written, so the logged fraction cannot drift.
inline bool clips(double norm, double max_norm) {
  return max_norm > 0 && std::isfinite(norm) && max_norm / (norm + 1e-6) < 1.0;
}

}  // namespace na
