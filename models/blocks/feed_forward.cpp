// feed_forward: linear C -> mult*C, GELU, linear back to C (biases on both). The GELU output is
// recomputed in the backward (gelu_linear), so only the hidden pre-activation is stored. With
// chunks > 1 the rows are processed in chunks by one custom function that recomputes the hidden
// layer in the backward (Reformer): same result, (rows / chunks) x mult*C activation memory.
#include "block.h"
#include "chunked_ffn.h"
#include "model.h"

namespace na {
namespace {

class FeedForward : public Block {
 public:
  explicit FeedForward(BlockContext& ctx) {
    const std::string path = ctx.path_for("");
    const std::string prefix = path.empty() ? "" : path + ".";
    const int64_t C = ctx.dims().d_model, mult = ctx.option<int64_t>("mult", 4), H = mult * C;
    chunks_ = ctx.option<int64_t>("chunks", 1);
    NA_CHECK(mult > 0, ctx.at(), "feed_forward: mult must be > 0, got ", mult);
    NA_CHECK(chunks_ > 0, ctx.at(), "feed_forward: chunks must be >= 1 (1 = not chunked), got ", chunks_);
    fc_ = &ctx.store().create(prefix + "fc.weight", {H, C}, Init::normal(0.02f));
    fc_b_ = &ctx.store().create(prefix + "fc.bias", {H}, Init::zeros());
    out_ = &ctx.store().create(prefix + "fc_out.weight", {C, H}, Init::normal(0.02f));
    out_b_ = &ctx.store().create(prefix + "fc_out.bias", {C}, Init::zeros());
    ctx.store().mark_residual_output(*out_);
  }
  Var forward(const Var& x, const BlockInput&) const override {
    if (chunks_ > 1) return chunked_ffn(x, *fc_, *fc_b_, *out_, *out_b_, chunks_);
    return gelu_linear(linear(x, *fc_, *fc_b_), *out_, *out_b_);  // gelu(hidden) is not stored
  }

 private:
  int64_t chunks_ = 1;
  Parameter *fc_, *fc_b_, *out_, *out_b_;
};

}  // namespace
NANOATTN_REGISTER_BLOCK(feed_forward,
                        "linear C -> mult*C, GELU, linear -> C; options: mult (4), chunks (1; > 1 recomputes the "
                        "hidden layer chunk by chunk in the backward), name",
                        [](BlockContext& c) { return std::make_unique<FeedForward>(c); });
}  // namespace na
