// Containers: residual (pre- or post-norm around a list of blocks) and repeat (n copies of a
// list, optionally sharing one set of parameters, ALBERT-style).
#include "block.h"
#include "model.h"
#include "recurrent.h"

namespace na {

std::unique_ptr<Block> make_norm(BlockContext& ctx, bool rms);  // norm.cpp

namespace {

class Residual : public Block {
 public:
  explicit Residual(BlockContext& ctx) {
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
  // pre-norm: x + body(norm(x));  post-norm: norm(x + body(x))
  Var forward(const Var& x, const BlockInput& in) const override {
    if (post_norm_) {
      Var y = add(x, run_blocks(body_, x, in));
      return norm_ ? norm_->forward(y, in) : y;
    }
    return add(x, run_blocks(body_, norm_ ? norm_->forward(x, in) : x, in));
  }
  std::string recurrent_unsupported() const override { return na::recurrent_unsupported(body_); }
  void init_state(RecurrentState& state) const override { init_states(body_, state); }  // norms hold none
  void describe(ModelAnatomy& a) const override { describe_blocks(body_, a); }  // norms multiply no matrix

 private:
  bool post_norm_ = false;
  std::unique_ptr<Block> norm_;
  std::vector<std::unique_ptr<Block>> body_;
};

class Repeat : public Block {
 public:
  explicit Repeat(BlockContext& ctx) {
    const std::string path = ctx.path_for("blocks");
    n_ = ctx.option<int64_t>("n", 1);
    const bool share = ctx.option<bool>("share", false);
    NA_CHECK(n_ > 0, ctx.at(), "repeat: n must be > 0, got ", n_);
    YAML::Node list = ctx.node_option("blocks");
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
  }
  Var forward(const Var& x, const BlockInput& in) const override {
    Var y = x;
    for (int64_t i = 0; i < n_; ++i) y = run_blocks(copy(i), y, in);
    return y;
  }
  std::string recurrent_unsupported() const override { return na::recurrent_unsupported(copies_[0]); }
  // A state per application, even when the copies share one set of weights.
  void init_state(RecurrentState& state) const override {
    for (int64_t i = 0; i < n_; ++i) init_states(copy(i), state);
  }
  void describe(ModelAnatomy& a) const override {
    for (int64_t i = 0; i < n_; ++i) describe_blocks(copy(i), a);
  }

 private:
  const std::vector<std::unique_ptr<Block>>& copy(int64_t i) const { return copies_[copies_.size() == 1 ? 0 : i]; }

  int64_t n_ = 1;
  std::vector<std::vector<std::unique_ptr<Block>>> copies_;
};

}  // namespace
NANOATTN_REGISTER_BLOCK(residual, "x + body(norm(x)) (or post-norm); options: norm, norm_name, post_norm, body, name",
                        [](BlockContext& c) { return std::make_unique<Residual>(c); });
NANOATTN_REGISTER_BLOCK(repeat, "n copies of a block list; options: n, share (ALBERT), blocks, name",
                        [](BlockContext& c) { return std::make_unique<Repeat>(c); });
}  // namespace na
