#include "optim/adamw.h"

#include <cmath>

#include "nanoattn/error.h"
#include "nanoattn/parallel.h"

namespace na {

AdamW::AdamW(std::vector<Parameter*> params, AdamWConfig config)
    : Optimizer(std::move(params), {"m", "v"}), config_(std::move(config)) {
  const auto& c = config_;
  NA_CHECK(c.beta1 >= 0.0f && c.beta1 < 1.0f, "AdamW", "beta1 ", c.beta1, " is not in [0, 1)");
  NA_CHECK(c.beta2 >= 0.0f && c.beta2 < 1.0f, "AdamW", "beta2 ", c.beta2, " is not in [0, 1)");
  NA_CHECK(c.eps >= 0.0f, "AdamW", "eps ", c.eps, " is negative");
  NA_CHECK(c.weight_decay >= 0.0f, "AdamW", "weight_decay ", c.weight_decay, " is negative");
  for (const Parameter* p : this->params()) decays_.push_back(c.decay ? c.decay(*p) : false);
}

void AdamW::update(size_t i, float lr, int64_t t) {
  const Parameter& p = *params()[i];
  float* w = p.value().data();
  const float* g = p.grad().data();
  float* m = slot(i, 0).data();
  float* v = slot(i, 1).data();
  const float b1 = config_.beta1, b2 = config_.beta2, eps = config_.eps;
  // Scalars in double, then rounded once, as PyTorch computes them on the host.
  const double bc1 = 1.0 - std::pow(static_cast<double>(b1), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(b2), static_cast<double>(t));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float keep = decays_[i] ? 1.0f - lr * config_.weight_decay : 1.0f;
  const float w1 = 1.0f - b1, w2 = 1.0f - b2;
  // Elementwise, so each element's result is the same whatever chunk or thread it lands on.
  parallel_for(p.value().numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      const float gj = g[j];
      w[j] *= keep;
      m[j] += w1 * (gj - m[j]);
      v[j] = b2 * v[j] + w2 * gj * gj;
      const float denom = std::sqrt(v[j]) / bc2_sqrt + eps;
      w[j] -= step_size * (m[j] / denom);
    }
  });
}

}  // namespace na
