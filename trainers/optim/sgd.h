// SGD with momentum as PyTorch's torch.optim.SGD (dampening 0, no Nesterov):
//   g' = g + wd * p   (only for parameters the decay rule selects)
//   buf = momentum * buf + g';  p -= lr * buf      (buf starts at zero, so step 1 gives buf = g')
#pragma once
#include "optim/optimizer.h"

namespace na {

struct SGDConfig {
  float momentum = 0.0f;
  float weight_decay = 0.0f;
  DecayRule decay = decay_matrices;  // unlike PyTorch (all params), same default as AdamW
};

// With momentum > 0 keeps one buffer per parameter, "momentum"; otherwise none.
class SGD : public Optimizer {
 public:
  explicit SGD(std::vector<Parameter*> params, SGDConfig config = {});
  const SGDConfig& config() const { return config_; }

 private:
  void update(size_t i, float lr, int64_t t) override;
  SGDConfig config_;
  std::vector<bool> decays_;
};

}  // namespace na
