#include "optim/optimizer.h"

#include <set>

#include "nanoattn/error.h"

namespace na {

Optimizer::Optimizer(std::vector<Parameter*> params, std::vector<std::string> slots)
    : params_(std::move(params)), slots_(std::move(slots)) {
  std::set<std::string> seen;
  for (const Parameter* p : params_) {
    NA_CHECK(p != nullptr, "optimizer", "null parameter in the list");
    // State is keyed by name, so two parameters with one name could not be told apart.
    NA_CHECK(seen.insert(p->name()).second, "optimizer", "parameter '", p->name(), "' is listed twice");
    std::vector<Tensor> bufs;
    for (size_t s = 0; s < slots_.size(); ++s) bufs.push_back(Tensor::zeros(p->value().shape()));
    buffers_.push_back(std::move(bufs));
  }
}

void Optimizer::step(float lr) {
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) update(i, lr, steps_);
}

void Optimizer::zero_grad() {
  for (const Parameter* p : params_) p->zero_grad();
}

OptimState Optimizer::state() const {
  OptimState out;
  for (size_t i = 0; i < params_.size(); ++i)
    for (size_t s = 0; s < slots_.size(); ++s)
      out.emplace_back(params_[i]->name() + "/" + slots_[s], buffers_[i][s].clone());
  return out;
}

void Optimizer::load_state(const OptimState& state, int64_t step_count) {
  NA_CHECK(step_count >= 0, "optimizer state", "step count ", step_count, " is negative");
  // Check everything before touching any buffer, so a bad checkpoint leaves us unchanged.
  std::vector<const Tensor*> found(params_.size() * slots_.size(), nullptr);
  for (const auto& [name, t] : state) {
    bool matched = false;
    for (size_t i = 0; i < params_.size() && !matched; ++i)
      for (size_t s = 0; s < slots_.size() && !matched; ++s) {
        if (name != params_[i]->name() + "/" + slots_[s]) continue;
        matched = true;
        const Shape& want = params_[i]->value().shape();
        NA_CHECK(t.defined() && t.shape() == want, "optimizer state",
                 "'", name, "' has shape ", t.defined() ? t.shape().str() : std::string("(undefined)"),
                 " but parameter '", params_[i]->name(), "' has shape ", want.str());
        NA_CHECK(found[i * slots_.size() + s] == nullptr, "optimizer state", "'", name, "' appears twice");
        found[i * slots_.size() + s] = &t;
      }
    NA_CHECK(matched, "optimizer state", "'", name, "' matches no parameter/buffer of this optimizer");
  }
  for (size_t i = 0; i < params_.size(); ++i)
    for (size_t s = 0; s < slots_.size(); ++s)
      NA_CHECK(found[i * slots_.size() + s] != nullptr, "optimizer state", "missing '",
               params_[i]->name(), "/", slots_[s], "' for parameter '", params_[i]->name(), "'");
  for (size_t i = 0; i < params_.size(); ++i)
    for (size_t s = 0; s < slots_.size(); ++s) buffers_[i][s].copy_from(*found[i * slots_.size() + s]);
  steps_ = step_count;
}

}  // namespace na
