// The residual block, in a header so that repeat's reversible stacks (reversible.h) can use a
// pre-norm residual's branch, norm then body, as F or G of a RevNet layer.
#pragma once
#include <memory>
#include <vector>

#include "block.h"

namespace na {

class Residual : public Block {
 public:
  explicit Residual(BlockContext& ctx);
  // pre-norm: x + branch(x);  post-norm: norm(x + body(x))
  Var forward(const Var& x, const BlockInput& in) const override;
  // body(norm(x)): what a pre-norm residual adds to x.
  Var branch(const Var& x, const BlockInput& in) const;
  bool post_norm() const { return post_norm_; }

  std::string recurrent_unsupported(bool kv_cache_ok) const override;
  void init_state(RecurrentState& state) const override;
  void describe(ModelAnatomy& a) const override;

 private:
  bool post_norm_ = false;
  std::unique_ptr<Block> norm_;
  std::vector<std::unique_ptr<Block>> body_;
};

}  // namespace na
