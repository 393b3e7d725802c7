// feed_forward: linear C -> mult*C, GELU, linear back to C (biases on both).
#include "block.h"
#include "model.h"

namespace na {
namespace {

class FeedForward : public Block {
 public:
  explicit FeedForward(BlockContext& ctx) {
    const std::string path = ctx.path_for("");
    const std::string prefix = path.empty() ? "" : path + ".";
    const int64_t C = ctx.dims().d_model, mult = ctx.option<int64_t>("mult", 4), H = mult * C;
    NA_CHECK(mult > 0, ctx.at(), "feed_forward: mult must be > 0, got ", mult);
    fc_ = &ctx.store().create(prefix + "fc.weight", {H, C}, Init::normal(0.02f));
    fc_b_ = &ctx.store().create(prefix + "fc.bias", {H}, Init::zeros());
    out_ = &ctx.store().create(prefix + "fc_out.weight", {C, H}, Init::normal(0.02f));
    out_b_ = &ctx.store().create(prefix + "fc_out.bias", {C}, Init::zeros());
  }
  Var forward(const Var& x, const BlockInput&) const override {
    return linear(gelu(linear(x, *fc_, *fc_b_)), *out_, *out_b_);
  }

 private:
  Parameter *fc_, *fc_b_, *out_, *out_b_;
};

}  // namespace
NANOATTN_REGISTER_BLOCK(feed_forward, "linear C -> mult*C, GELU, linear -> C; options: mult (4), name",
                        [](BlockContext& c) { return std::make_unique<FeedForward>(c); });
}  // namespace na
