#include "recompute.h"

#include <vector>

#include "nanoattn/profile.h"
#include "recurrent.h"
#include "scratch_tape.h"

namespace na {

namespace {

class Recompute : public Block {
 public:
  explicit Recompute(std::unique_ptr<Block> inner) : inner_(std::move(inner)) { type = inner_->type; }

  Var forward(const Var& x, const BlockInput& in) const override {
    // Nothing to save without gradients; the recurrent step keeps no activations either.
    if (in.state != nullptr || !tape().grad_enabled()) return inner_->forward(x, in);
    Tensor y;
    ScratchTape s;  // freed at return: only the output is kept
    {
      TapeScope scope(s.tape());
      NoGrad no_grad;
      y = inner_->forward(scratch_input(s.tape(), x, false), in).value();
    }
    NA_PROFILE_OP("recompute");  // charged with the backward entry below: the whole recomputation
    // Requires a gradient: the block's parameters (if any) want one.
    Var out = tape().output(y.shape(), true);
    out.value().copy_from(y);
    // Captured by value: x's value, the ids span and the options stay valid until backward.
    record_backward(out, [inner = inner_.get(), x, out, in] {
      ScratchTape s;
      TapeScope scope(s.tape());
      Var xs = scratch_input(s.tape(), x, x.defined() && x.requires_grad());
      // x may already hold a gradient (from a skip connection, whose backward ran first): the
      // block's ops then add into that very buffer, in the order they would without recompute,
      // so the sum is bitwise the same.
      if (xs.defined() && xs.requires_grad() && x.has_grad()) xs.node()->grad = x.grad();
      Var y = inner->forward(xs, in);
      if (!y.requires_grad()) return;  // no parameter, and x needs no gradient
      s.tape().backward(y, out.grad());
      // Else the block's first op wrote a fresh gradient (on the scratch tape): move it to x.
      if (xs.defined() && xs.requires_grad() && xs.has_grad() && !x.has_grad()) {
        float beta = 0;
        x.grad_sink(beta).copy_from(xs.grad());
      }
    });
    return out;
  }

  std::string recurrent_unsupported(bool kv_cache_ok) const override { return inner_->recurrent_unsupported(kv_cache_ok); }
  void init_state(RecurrentState& state) const override { inner_->init_state(state); }
  void describe(ModelAnatomy& a) const override { inner_->describe(a); }

 private:
  // x as a leaf of the scratch tape (an embedding takes no x: undefined stays undefined).
  static Var scratch_input(Tape& t, const Var& x, bool requires_grad) {
    return x.defined() ? t.leaf(x.value(), requires_grad) : Var();
  }

  std::unique_ptr<Block> inner_;
};

}  // namespace

void check_recomputable(const Block& block, const std::string& where, const std::string& why) {
  // Dropout masks are a function of the step's key, but the linear plugin's favor features with
  // redraw: true come from a counter that each training forward advances: refuse rather than
  // compute wrong gradients.
  ModelAnatomy a;
  block.describe(a);
  for (const AttentionUse& u : a.attention) {
    const auto& o = u.options.values();
    auto redraw = o.find("redraw"), map = o.find("feature_map");
    const bool redraws = redraw != o.end() && redraw->second == OptionValue(true) && map != o.end() &&
                         map->second == OptionValue(std::string("favor"));
    NA_CHECK(!redraws, where, why, ", but ", u.path, " (plugin '", u.plugin, "', feature_map: favor) draws new random ",
             "features at each training forward (redraw: true), which a recomputed forward would not repeat; set ",
             "redraw: false");
  }
}

std::unique_ptr<Block> make_recompute(std::unique_ptr<Block> inner, const std::string& where) {
  check_recomputable(*inner, where, "recompute: true runs the block's forward again in the backward");
  return std::make_unique<Recompute>(std::move(inner));
}

}  // namespace na
