// attention: any attention plugin, by name, with its options validated against what the plugin
// declares; the plugin's declared parameters are created under this block's path.
#include "block.h"
#include "model.h"
#include "plugin_loader.h"
#include "plugin_options.h"

namespace na {
namespace {

class Attention : public Block {
 public:
  explicit Attention(BlockContext& ctx) {
    const std::string path = ctx.path_for("attn");
    const std::string plugin = ctx.option<std::string>("plugin", "softmax");
    const LoadedPlugin& loaded = ctx.plugins().get(plugin);
    AttentionConfig config;
    config.d_model = ctx.dims().d_model;
    config.n_heads = ctx.option<int64_t>("n_heads", 1);
    config.max_len = ctx.dims().max_len;
    config.causal = ctx.dims().causal;
    config.seed = Rng::mix(ctx.store().seed(), stable_hash(path));  // e.g. favor's features, per layer
    NA_CHECK(config.n_heads > 0 && config.d_model % config.n_heads == 0, ctx.at(), "attention: n_heads ",
             config.n_heads, " must be > 0 and divide d_model ", config.d_model);
    config.options = resolve_options(*loaded.info, ctx.node_option("options"), ctx.where());
    attention_ = ctx.plugins().create(plugin, config);
    for (const ParamSpec& s : attention_->parameters())
      params_.add(s.name, ctx.store().create(path + "." + s.name, s.shape, s.init).var());
  }
  Var forward(const Var& x, const BlockInput& in) const override {
    AttentionContext ctx;
    ctx.training = in.opt.training;
    return attention_->forward(x, params_, ctx);
  }

 private:
  std::unique_ptr<IAttention> attention_;
  ParamSet params_;
};

}  // namespace
NANOATTN_REGISTER_BLOCK(attention, "an attention plugin; options: plugin, n_heads, options {plugin options}, name",
                        [](BlockContext& c) { return std::make_unique<Attention>(c); });
}  // namespace na
