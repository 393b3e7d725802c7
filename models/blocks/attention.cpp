// attention: any attention plugin, by name, with its options validated against what the plugin
// declares; the plugin's declared parameters are created under this block's path.
#include "block.h"
#include "integer_text.h"
#include "model.h"
#include "plugin_loader.h"
#include "plugin_options.h"
#include "recurrent.h"

namespace na {
namespace {

// The model's `attention: {n_heads: ...}` default (a block's own n_heads is read by option<>).
int64_t parse_heads(const YAML::Node& v, const std::string& at) {
  int64_t heads = 0;
  const std::string why = v.IsScalar() ? parse_integer(v.Scalar(), heads) : "must be an integer, got 'a map or list'";
  if (!why.empty()) throw Error(at, cat("model.attention: n_heads ", why));
  return heads;
}

// An option error located at the value it names ("option 'nu'"): the line that set it (a run's
// override keeps its own line through the merge), or "--set" for a value given there (--set
// values carry no position), rather than at the block or the model's `attention:` defaults.
// Messages from the plugin loader and the plugin name the option in quotes.
Error at_option(const Error& e, const YAML::Node& options, const BlockContext& ctx) {
  if (!options || !options.IsMap()) return e;
  for (const auto& kv : options) {
    const std::string key = kv.first.Scalar();
    if (e.message().find("'" + key + "'") == std::string::npos) continue;
    // "<file>: --set" keeps the file first, so the block builder passes the error on unchanged.
    // A plugin's own context ("linear attention") stays; a file position is replaced.
    const bool located = !ctx.where().empty() && e.context().rfind(ctx.where(), 0) == 0;
    // The key's position when key and value share a line (as written); the value's when a merge
    // paired the defaults' key with a run's value.
    const bool same_line = kv.first.Mark().line == kv.second.Mark().line;
    return Error(kv.second.Mark().line < 0 ? cat(ctx.where(), ": --set") : ctx.at(same_line ? kv.first : kv.second),
                 located ? e.message() : std::string(e.what()));
  }
  return e;
}

class Attention : public Block {
 public:
  explicit Attention(BlockContext& ctx) {
    const std::string path = ctx.path_for("attn");
    // Unset options come from the model's `attention:` defaults, then from the built-in ones.
    const YAML::Node& defaults = ctx.dims().attention;
    auto fallback = [&](const char* key, const std::string& builtin) {
      YAML::Node v = defaults ? defaults[key] : YAML::Node();
      return v && v.IsScalar() ? v.Scalar() : builtin;
    };
    const bool own_plugin = ctx.has_option("plugin");
    const std::string plugin = ctx.option<std::string>("plugin", fallback("plugin", "softmax"));
    const LoadedPlugin& loaded = ctx.plugins().get(plugin);
    AttentionConfig config;
    config.d_model = ctx.dims().d_model;
    const YAML::Node default_heads = defaults ? defaults["n_heads"] : YAML::Node();
    const bool has_default = default_heads && !default_heads.IsNull();
    const int64_t heads = has_default ? parse_heads(default_heads, ctx.at(default_heads)) : 1;
    config.n_heads = ctx.option<int64_t>("n_heads", heads);
    config.max_len = ctx.dims().max_len;
    config.causal = ctx.dims().causal;
    config.seed = Rng::mix(ctx.store().seed(), stable_hash(path));  // e.g. favor's features, per layer
    NA_CHECK(config.n_heads > 0 && config.d_model % config.n_heads == 0, ctx.at(), "attention: n_heads ",
             config.n_heads, " must be > 0 and divide d_model ", config.d_model);
    // The defaults' plugin options belong to the defaults' plugin: a block naming its own
    // plugin uses only its own options.
    YAML::Node options = ctx.node_option("options");
    if (!options && !own_plugin && defaults && defaults["options"]) options = defaults["options"];
    try {
      config.options = resolve_options(*loaded.info, options, ctx.where());
      attention_ = ctx.plugins().create(plugin, config);
    } catch (const Error& e) {
      throw at_option(e, options, ctx);
    }
    for (const ParamSpec& s : attention_->parameters()) {
      Parameter& p = ctx.store().create(path + "." + s.name, s.shape, s.init);
      params_.add(s.name, p.var());
      // The SDK's output projection feeds the residual stream (GPT-2 scales its init by depth).
      if (s.name == "proj.weight") ctx.store().mark_residual_output(p);
      if (is_attention_projection(s.name) && s.shape.rank() == 2) projections_.push_back(&p);
    }
    use_ = {path, plugin, config.d_model, config.n_heads, config.causal, config.options};
    path_ = path;
    plugin_ = plugin;
    capabilities_ = loaded.capabilities;
  }
  Var forward(const Var& x, const BlockInput& in) const override {
    if (in.state) return step(x, in);
    AttentionContext ctx;
    ctx.training = in.opt.training;
    return attention_->forward(x, params_, ctx);
  }

  // The plugin's own parameters (beta, E, ...) are priced with its attention (cost_model.h).
  void describe(ModelAnatomy& a) const override {
    a.matmul_weights.insert(a.matmul_weights.end(), projections_.begin(), projections_.end());
    a.attention.push_back(use_);
  }

  std::string recurrent_unsupported(bool kv_cache_ok) const override {
    if (capabilities_.recurrent || (kv_cache_ok && capabilities_.kv_cache)) return "";
    return cat(path_.empty() ? "attention" : path_, " uses plugin '", plugin_, "', which has no ",
               kv_cache_ok ? "token-by-token form (neither RNN nor KV cache)" : "RNN form",
               " (capabilities: ", capability_names(capabilities_), ")");
  }
  void init_state(RecurrentState& state) const override {
    try {
      state.add(this, std::make_unique<State>(attention_->init_state(state.batch())));
    } catch (const Error& e) {  // e.g. a causal-only RNN form in a bidirectional model
      throw Error(path_, cat("plugin '", plugin_, "': ", e.what()));
    }
  }

 private:
  struct State : BlockState {
    explicit State(std::unique_ptr<AttentionState> s) : rnn(std::move(s)) {}
    size_t bytes() const override { return rnn->bytes(); }
    std::unique_ptr<AttentionState> rnn;  // the plugin's: an RNN state or a KV cache
  };

  // x: (B, 1, C) -> (B, 1, C) through the plugin's step, which advances this application's state.
  Var step(const Var& x, const BlockInput& in) const {
    NA_CHECK(in.T == 1, path_, "recurrent mode runs one token at a time, got T = ", in.T);
    State& s = in.state->next<State>(this);
    const int64_t B = x.dim(0), C = x.dim(2);
    return reshape(attention_->step(*s.rnn, reshape(x, {B, C}), params_), {B, 1, C});
  }

  static std::string capability_names(const Capabilities& c) {
    std::string out;
    auto add = [&](bool on, const char* name) {
      if (on) out += (out.empty() ? "" : ", ") + std::string(name);
    };
    add(c.causal, "causal");
    add(c.bidirectional, "bidirectional");
    add(c.recurrent, "recurrent");
    add(c.needs_fixed_length, "needs_fixed_length");
    add(c.key_padding_mask, "key_padding_mask");
    add(c.kv_cache, "kv_cache");
    return out.empty() ? "none" : out;
  }

  std::unique_ptr<IAttention> attention_;
  ParamSet params_;
  std::vector<const Parameter*> projections_;  // q/k/v and output weights
  AttentionUse use_;
  std::string path_, plugin_;
  Capabilities capabilities_;
};

}  // namespace
NANOATTN_REGISTER_BLOCK(attention, "an attention plugin; options: plugin, n_heads, options {plugin options}, name",
                        [](BlockContext& c) { return std::make_unique<Attention>(c); });
}  // namespace na
