#include "blocks/reversible.h"

#include <memory>

#include "blocks/residual.h"
#include "scratch_tape.h"

namespace na {

namespace {

thread_local bool store_activations = false;  // testing::StoreReversibleActivations

// y += s * d
void add_to(const Tensor& y, const Tensor& d, float s = 1.0f) {
  float* yp = y.data();
  const float* dp = d.data();
  for (int64_t i = 0, n = y.numel(); i < n; ++i) yp[i] += s * dp[i];
}

}  // namespace

Var ReversibleStack::forward(const Var& x, const BlockInput& in) const {
  if (!tape().grad_enabled() || in.state || store_activations) return stored(x, in);
  return reversible(x, in);
}

Var ReversibleStack::stored(const Var& x, const BlockInput& in) const {
  Var x1 = x, x2 = x;
  for (const Layer& l : layers_) {
    x1 = add(x1, l.f->branch(x2, in));
    x2 = add(x2, l.g->branch(x1, in));
  }
  return scale(add(x1, x2), 0.5f);
}

Var ReversibleStack::reversible(const Var& x, const BlockInput& in) const {
  const Shape s = x.shape();
  // The two streams, on the outer tape: they become the top layer's (y1, y2), which the
  // backward turns back into each layer's inputs in place.
  Tensor y1 = tape().alloc(s), y2 = tape().alloc(s);
  y1.copy_from(x.value());
  y2.copy_from(x.value());
  Var out = tape().output(s, true);  // the parameters need gradients even if x does not
  {
    ScratchTape scratch;
    TapeScope scope(scratch.tape());
    NoGrad no_grad;
    for (const Layer& l : layers_) {
      add_to(y1, l.f->branch(tape().leaf(y2), in).value());
      add_to(y2, l.g->branch(tape().leaf(y1), in).value());
      tape().reset();
    }
  }
  const Tensor& o = out.value();
  for (int64_t i = 0; i < o.numel(); ++i) o[i] = (y1[i] + y2[i]) * 0.5f;

  // F and G are pure functions of their input, the parameters and `in` (dropout masks come from
  // (key, index)), so recomputing them gives the forward's values.
  record_backward(out, [this, x, out, y1, y2, in] {
    const Shape s = out.shape();
    Tensor dy1 = tape().alloc(s), dy2 = tape().alloc(s);
    const Tensor& d = out.grad();
    for (int64_t i = 0; i < d.numel(); ++i) dy1[i] = dy2[i] = 0.5f * d[i];
    ScratchTape scratch;
    TapeScope scope(scratch.tape());
    for (size_t k = layers_.size(); k-- > 0;) {
      // y2 = x2 + G(y1): x2 = y2 - G(y1); dy1 += (dG/dy1)^T dy2.
      {
        Var z = tape().leaf(y1, true);
        Var g = layers_[k].g->branch(z, in);
        add_to(y2, g.value(), -1.0f);
        tape().backward(g, dy2);
        if (z.has_grad()) add_to(dy1, z.grad());
        tape().reset();
      }
      // y1 = x1 + F(x2): x1 = y1 - F(x2); dx2 = dy2 + (dF/dx2)^T dy1, dx1 = dy1.
      {
        Var z = tape().leaf(y2, true);
        Var f = layers_[k].f->branch(z, in);
        add_to(y1, f.value(), -1.0f);
        tape().backward(f, dy1);
        if (z.has_grad()) add_to(dy2, z.grad());
        tape().reset();
      }
    }
    // Both streams started as x.
    if (x.requires_grad()) {
      const Tensor& gx = x.grad_acc();
      add_to(gx, dy1);
      add_to(gx, dy2);
    }
  });
  return out;
}

namespace testing {
StoreReversibleActivations::StoreReversibleActivations() : saved_(store_activations) { store_activations = true; }
StoreReversibleActivations::~StoreReversibleActivations() { store_activations = saved_; }

}  // namespace testing

}  // namespace na
