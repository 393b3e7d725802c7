// lm_head: x (B, T, C) -> logits (B, T, V); tied to an existing (V, C) table (the token
// embedding) or with its own weight.
#include "block.h"
#include "model.h"

namespace na {
namespace {

class LmHead : public Block {
 public:
  explicit LmHead(BlockContext& ctx) {
    const std::string tied = ctx.option<std::string>("tied_to", "");
    const std::string path = ctx.path_for("head");
    const Shape want{ctx.dims().vocab, ctx.dims().d_model};
    if (!tied.empty()) {
      weight_ = ctx.store().find(tied);
      NA_CHECK(weight_ != nullptr, ctx.at(), "lm_head: tied_to '", tied,
               "' names no parameter defined before the head (e.g. tok.weight)");
      NA_CHECK(weight_->value().shape() == want, ctx.at(), "lm_head: tied_to '", tied, "' has shape ",
               weight_->value().shape(), ", not (V, C) = ", want);
    } else {
      weight_ = &ctx.store().create(path + ".weight", want, Init::normal(0.02f));
    }
  }
  Var forward(const Var& x, const BlockInput&) const override { return linear(x, *weight_); }

 private:
  Parameter* weight_;
};

class Dropout : public Block {
 public:
  explicit Dropout(BlockContext& ctx) : p_(ctx.option<float>("p", 0.1f)) {
    NA_CHECK(p_ >= 0 && p_ < 1, ctx.at(), "dropout: p must be in [0, 1), got ", p_);
    salt_ = stable_hash(ctx.path_for("dropout") + ctx.at());
  }
  Var forward(const Var& x, const BlockInput& in) const override {
    if (!in.opt.training || p_ == 0) return x;
    return dropout(x, p_, Rng::mix(in.opt.dropout_key, salt_));  // a distinct mask per block
  }

 private:
  float p_;
  uint64_t salt_;
};

}  // namespace
NANOATTN_REGISTER_BLOCK(lm_head, "logits = x W^T; options: tied_to (a (V, C) parameter), name",
                        [](BlockContext& c) { return std::make_unique<LmHead>(c); });
NANOATTN_REGISTER_BLOCK(dropout, "inverted dropout while training; options: p (0.1)",
                        [](BlockContext& c) { return std::make_unique<Dropout>(c); });
}  // namespace na
