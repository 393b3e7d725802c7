// layernorm and rmsnorm over the channels of x (B, T, C), with a learned scale (and shift).
#include "block.h"
#include "model.h"

namespace na {
namespace {

class Norm : public Block {
 public:
  Norm(BlockContext& ctx, bool rms) : rms_(rms) {
    const std::string path = ctx.path_for(rms ? "rmsnorm" : "ln");
    eps_ = ctx.option<float>("eps", rms ? 1e-6f : 1e-5f);
    const int64_t C = ctx.dims().d_model;
    weight_ = &ctx.store().create(path + ".weight", {C}, Init::ones());
    if (!rms) bias_ = &ctx.store().create(path + ".bias", {C}, Init::zeros());
  }
  Var forward(const Var& x, const BlockInput&) const override {
    return rms_ ? rmsnorm(x, *weight_, eps_) : layernorm(x, *weight_, *bias_, eps_);
  }

 private:
  bool rms_;
  float eps_;
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
};

}  // namespace

// Used by residual for its norm too.
std::unique_ptr<Block> make_norm(BlockContext& ctx, bool rms) { return std::make_unique<Norm>(ctx, rms); }

NANOATTN_REGISTER_BLOCK(layernorm, "LayerNorm over C; options: eps (1e-5), name",
                        [](BlockContext& c) { return make_norm(c, false); });
NANOATTN_REGISTER_BLOCK(rmsnorm, "RMSNorm over C; options: eps (1e-6), name",
                        [](BlockContext& c) { return make_norm(c, true); });
}  // namespace na
