#include "optim/sgd.h"

#include "nanoattn/error.h"
#include "nanoattn/parallel.h"

namespace na {

namespace {
std::vector<std::string> sgd_slots(float momentum) {
  if (momentum > 0.0f) return {"momentum"};
  return {};
}
}  // namespace

SGD::SGD(std::vector<Parameter*> params, SGDConfig config)
    : Optimizer(std::move(params), sgd_slots(config.momentum)), config_(std::move(config)) {
  NA_CHECK(config_.momentum >= 0.0f, "SGD", "momentum ", config_.momentum, " is negative");
  NA_CHECK(config_.weight_decay >= 0.0f, "SGD", "weight_decay ", config_.weight_decay, " is negative");
  for (const Parameter* p : this->params()) decays_.push_back(config_.decay ? config_.decay(*p) : false);
}

void SGD::update(size_t i, float lr, int64_t /*t*/) {
  const Parameter& p = *params()[i];
  float* w = p.value().data();
  const float* g = p.grad().data();
  const float wd = decays_[i] ? config_.weight_decay : 0.0f;
  const float mu = config_.momentum;
  float* buf = mu > 0.0f ? slot(i, 0).data() : nullptr;
  parallel_for(p.value().numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      float d = g[j];
      if (wd != 0.0f) d += wd * w[j];
      if (buf) d = buf[j] = mu * buf[j] + d;
      w[j] -= lr * d;
    }
  });
}

}  // namespace na
