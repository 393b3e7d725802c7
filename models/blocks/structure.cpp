// Containers: residual (pre- or post-norm around a list of blocks) and repeat (n copies of a
// list, optionally sharing one set of parameters, ALBERT-style, or run as a reversible stack:
// reversible.h).
#include <variant>

#include "block.h"
#include "model.h"
#include "recompute.h"
#include "recurrent.h"
#include "blocks/residual.h"
#include "blocks/reversible.h"

namespace na {

std::unique_ptr<Block> make_norm(BlockContext& ctx, bool rms);  // norm.cpp

Residual::Residual(BlockContext& ctx) {
  const std::string path = ctx.path_for("");
  const std::string norm = ctx.option<std::string>("norm", "layernorm");
  const std::string norm_name = ctx.option<std::string>("norm_name", "norm");
  post_norm_ = ctx.option<bool>("post_norm", false);
  NA_CHECK(norm == "layernorm" || norm == "rmsnorm" || norm == "none", ctx.at(), "residual: norm '", norm,
           "' is not one of layernorm, rmsnorm, none");
  if (norm != "none") {
    YAML::Node opts;
    opts["name"] = norm_name;
    BlockContext norm_ctx(norm, opts, path, ctx.where(), ctx.dims(), ctx.store(), ctx.plugins());
    norm_ = make_norm(norm_ctx, norm == "rmsnorm");
  }
  body_ = build_blocks(ctx.node_option("body"), path, ctx.where(), ctx.dims(), ctx.store(), ctx.plugins());
}

Var Residual::forward(const Var& x, const BlockInput& in) const {
  if (post_norm_) {
    Var y = add(x, run_blocks(body_, x, in));
    return norm_ ? norm_->forward(y, in) : y;
  }
  return add(x, branch(x, in));
}

Var Residual::branch(const Var& x, const BlockInput& in) const {
  return run_blocks(body_, norm_ ? norm_->forward(x, in) : x, in);
}

std::string Residual::recurrent_unsupported(bool kv_cache_ok) const {
  return na::recurrent_unsupported(body_, kv_cache_ok);
}
void Residual::init_state(RecurrentState& state) const { init_states(body_, state); }  // norms hold none
void Residual::describe(ModelAnatomy& a) const { describe_blocks(body_, a); }  // norms multiply no matrix

namespace {

class Repeat : public Block {
 public:
  explicit Repeat(BlockContext& ctx) {
    const std::string path = ctx.path_for("blocks");
    n_ = ctx.option<int64_t>("n", 1);
    const bool share = ctx.option<bool>("share", false);
    const bool reversible = ctx.option<bool>("reversible", false);
    NA_CHECK(n_ > 0, ctx.at(), "repeat: n must be > 0, got ", n_);
    YAML::Node list = ctx.node_option("blocks");
    const size_t count = list.IsSequence() ? list.size() : 0;
    NA_CHECK(!reversible || (count > 0 && count % 2 == 0), list ? ctx.at(list) : ctx.at(),
             "repeat: reversible: true takes its blocks in pairs (F, G) of pre-norm residuals, got ", count,
             " block(s)");
    const int64_t before = ctx.store().count();
    for (int64_t i = 0; i < (share ? 1 : n_); ++i) {
      std::string child = share ? path : path + "." + std::to_string(i);
      copies_.push_back(build_blocks(list, child, ctx.where(), ctx.dims(), ctx.store(), ctx.plugins()));
      // From the first copy's size: do n copies fit (weights, gradients, AdamW's two moments)?
      if (i == 0 && !share)
        check_fits_in_memory(16.0 * static_cast<double>(ctx.store().count() - before) * static_cast<double>(n_),
                             ctx.at(), cat("repeat: n = ", n_, " copies of ", ctx.store().count() - before,
                                           " parameters (with gradients and optimizer state)"),
                             "lower n, or set share: true");
    }
    if (reversible) reversible_ = make_stack(ctx, list);
  }
  Var forward(const Var& x, const BlockInput& in) const override {
    if (reversible_) return reversible_->forward(x, in);
    Var y = x;
    for (int64_t i = 0; i < n_; ++i) y = run_blocks(copy(i), y, in);
    return y;
  }
  std::string recurrent_unsupported(bool kv_cache_ok) const override {
    return na::recurrent_unsupported(copies_[0], kv_cache_ok);
  }
  // A state per application, even when the copies share one set of weights.
  void init_state(RecurrentState& state) const override {
    for (int64_t i = 0; i < n_; ++i) init_states(copy(i), state);
  }
  void describe(ModelAnatomy& a) const override {
    for (int64_t i = 0; i < n_; ++i) describe_blocks(copy(i), a);
  }

 private:
  const std::vector<std::unique_ptr<Block>>& copy(int64_t i) const { return copies_[copies_.size() == 1 ? 0 : i]; }

  // The layers of reversible: true, in forward order: the same blocks (and parameters, and
  // recurrent states) as the ordinary repeat, run as a two-stream RevNet.
  std::unique_ptr<ReversibleStack> make_stack(BlockContext& ctx, const YAML::Node& list) const {
    std::vector<ReversibleStack::Layer> layers;
    for (int64_t i = 0; i < n_; ++i)
      for (size_t j = 0; j + 1 < copy(i).size(); j += 2) {
        const Residual* fg[2];
        for (size_t k = 0; k < 2; ++k) {
          const Block* b = copy(i)[j + k].get();
          fg[k] = dynamic_cast<const Residual*>(b);
          NA_CHECK(fg[k] != nullptr, ctx.at(list[j + k]), "repeat: reversible: true takes pre-norm residual "
                   "blocks only (each pair is a layer's F and G), got '", b->type, "'");
          NA_CHECK(!fg[k]->post_norm(), ctx.at(list[j + k]), "repeat: reversible: true needs pre-norm "
                   "residuals (F and G are norm then body), this one has post_norm: true");
        }
        layers.push_back({fg[0], fg[1]});
      }
    check_recomputable(*this, ctx.at(), "repeat: reversible: true recomputes each layer in the backward");
    return std::make_unique<ReversibleStack>(std::move(layers));
  }

  int64_t n_ = 1;
  std::unique_ptr<ReversibleStack> reversible_;
  std::vector<std::vector<std::unique_ptr<Block>>> copies_;
};

}  // namespace
NANOATTN_REGISTER_BLOCK(residual, "x + body(norm(x)) (or post-norm); options: norm, norm_name, post_norm, body, name",
                        [](BlockContext& c) { return std::make_unique<Residual>(c); });
NANOATTN_REGISTER_BLOCK(repeat,
                        "n copies of a block list; options: n, share (ALBERT), reversible (RevNet: pairs of "
                        "residuals), blocks, name",
                        [](BlockContext& c) { return std::make_unique<Repeat>(c); });
}  // namespace na
