// feed_forward: linear C -> H, GELU, linear back to C (biases on both), H = mult*C or `hidden`
// (model.feed_forward gives defaults: a block's own mult or hidden replaces the default's width,
// whichever of the two the default gave; giving both in one place is an error). The GELU output is
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
    const int64_t C = ctx.dims().d_model;
    const YAML::Node& defaults = ctx.dims().feed_forward;  // model.feed_forward (the model checked its keys)
    const bool own_mult = ctx.has_option("mult"), own_hidden = ctx.has_option("hidden");
    NA_CHECK(!(own_mult && own_hidden), ctx.at(), "feed_forward: give either mult (hidden = mult x d_model = mult x ",
             C, ") or hidden (the width itself), not both");
    // The width is one setting written two ways: the block's own form replaces the default's.
    const YAML::Node none;
    const int64_t mult = ctx.option_or_default<int64_t>("mult", own_hidden ? none : defaults, 4);
    const int64_t hidden = ctx.option_or_default<int64_t>("hidden", own_mult ? none : defaults, 0);
    const bool by_hidden = own_hidden || (!own_mult && defaults && defaults["hidden"]);
    auto width_at = [&](const char* key, bool own) {  // where the width was written, for its error
      return own || !defaults || !defaults[key] ? ctx.at() : ctx.at(defaults[key]);
    };
    if (by_hidden)
      NA_CHECK(hidden > 0, width_at("hidden", own_hidden), "feed_forward: hidden must be > 0, got ", hidden);
    else
      NA_CHECK(mult > 0, width_at("mult", own_mult), "feed_forward: mult must be > 0, got ", mult);
    const int64_t H = by_hidden ? hidden : mult * C;
    chunks_ = ctx.option_or_default<int64_t>("chunks", defaults, 1);
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
  void describe(ModelAnatomy& a) const override {
    a.matmul_weights.push_back(fc_);
    a.matmul_weights.push_back(out_);
  }

 private:
  int64_t chunks_ = 1;
  Parameter *fc_, *fc_b_, *out_, *out_b_;
};

}  // namespace
NANOATTN_REGISTER_BLOCK(feed_forward,
                        "linear C -> H, GELU, linear -> C; options: mult (4: H = mult*C) or hidden (H itself), chunks (1; "
                        "> 1 recomputes the hidden layer chunk by chunk in the backward), name; unset ones come from "
                        "model.feed_forward, where a block's own mult replaces a default hidden and vice versa",
                        [](BlockContext& c) { return std::make_unique<FeedForward>(c); });
}  // namespace na
