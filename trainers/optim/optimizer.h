// Optimizer: updates a fixed list of parameters from their gradients, and exposes its
// per-parameter buffers by name so checkpoints can save and restore them exactly.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "nanoattn/tape.h"
#include "nanoattn/tensor.h"

namespace na {

// Named optimizer buffers, e.g. {"tok.weight/m", tensor}.
using OptimState = std::vector<std::pair<std::string, Tensor>>;

// Which parameters get weight decay. The default decays matrices (>= 2 dims) and leaves
// biases, LayerNorm gains and other vectors alone, as nanoGPT-style training does.
using DecayRule = std::function<bool(const Parameter&)>;
inline bool decay_matrices(const Parameter& p) { return p.value().rank() >= 2; }

class Optimizer {
 public:
  // `slots` names the buffers kept per parameter (e.g. {"m", "v"}); each starts at zero with
  // the parameter's shape. Parameters must outlive the optimizer and have distinct names.
  Optimizer(std::vector<Parameter*> params, std::vector<std::string> slots);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update with learning rate `lr` from the current gradients (which are left as they are).
  void step(float lr);
  void zero_grad();

  // Number of step() calls so far (AdamW's bias correction depends on it).
  int64_t step_count() const { return steps_; }
  const std::vector<Parameter*>& params() const { return params_; }

  // Deep copies of every buffer, named "<param name>/<slot>", in parameter then slot order.
  OptimState state() const;
  // Restores buffers saved by state() plus the step counter. Every expected name must be
  // present with the parameter's shape, and nothing else; errors name the parameter.
  void load_state(const OptimState& state, int64_t step_count);

 protected:
  // Updates parameter i; `t` is the 1-based number of this step.
  virtual void update(size_t i, float lr, int64_t t) = 0;
  Tensor& slot(size_t param, size_t s) { return buffers_[param][s]; }

  // Elements per parallel chunk: fixed, so chunking never depends on the thread count.
  static constexpr int64_t kGrain = 1 << 14;

 private:
  std::vector<Parameter*> params_;
  std::vector<std::string> slots_;
  std::vector<std::vector<Tensor>> buffers_;  // [param][slot]
  int64_t steps_ = 0;
};

}  // namespace na
