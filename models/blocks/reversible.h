// Reversible residual stacks (RevNet, Gomez et al. 2017; Reformer): `repeat: {reversible: true}`.
//
// Each pair of pre-norm residuals (F, G) of the repeated list is one two-stream layer:
//   x1 = x2 = x;   y1 = x1 + F(x2);   y2 = x2 + G(y1);   output (y1 + y2) / 2
// A layer's inputs follow from its outputs (x2 = y2 - G(y1), x1 = y1 - F(x2)), so training
// keeps no activation per layer: the forward runs on a scratch tape that is reset after each
// layer, and one backward closure walks the layers from the top, reconstructing each layer's
// inputs and recomputing F and G with gradients on the scratch tape. Activation memory is one
// layer's, whatever the depth.
#pragma once
#include <cstddef>
#include <vector>

#include "block.h"

namespace na {

class Residual;

class ReversibleStack {
 public:
  struct Layer {
    const Residual* f;
    const Residual* g;
  };
  explicit ReversibleStack(std::vector<Layer> layers) : layers_(std::move(layers)) {}
  Var forward(const Var& x, const BlockInput& in) const;

 private:
  Var stored(const Var& x, const BlockInput& in) const;      // ordinary ops: eval, RNN steps
  Var reversible(const Var& x, const BlockInput& in) const;  // training: one closure, no activations

  std::vector<Layer> layers_;
};

namespace testing {
// While alive (on this thread), reversible stacks train through stored(): ordinary autograd
// keeping every activation, the same math without the reconstruction. The tests' reference.
class StoreReversibleActivations {
 public:
  StoreReversibleActivations();
  ~StoreReversibleActivations();
  StoreReversibleActivations(const StoreReversibleActivations&) = delete;
  StoreReversibleActivations& operator=(const StoreReversibleActivations&) = delete;

 private:
  bool saved_;
};
}  // namespace testing

}  // namespace na
