// AdamW exactly as PyTorch's torch.optim.AdamW (single-tensor path):
//   p -= lr * wd * p                      (decoupled decay, before the Adam update)
//   m  = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
#pragma once
#include "optim/optimizer.h"

namespace na {

struct AdamWConfig {
  // PyTorch's defaults; charlm_tiny.h5 uses beta2 0.99 and weight_decay 0.1.
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.01f;
  DecayRule decay = decay_matrices;  // asked once per parameter, at construction
};

// Buffers per parameter: "m" (first moment) and "v" (second moment).
class AdamW : public Optimizer {
 public:
  explicit AdamW(std::vector<Parameter*> params, AdamWConfig config = {});
  const AdamWConfig& config() const { return config_; }
  bool decays(size_t i) const { return decays_[i]; }

 private:
  void update(size_t i, float lr, int64_t t) override;
  AdamWConfig config_;
  std::vector<bool> decays_;
};

}  // namespace na
