// lm_head: x (B, T, C) -> logits (B, T, V); tied to an existing (V, C) table (the token
// embedding; a factorised one's projection too) or with its own weight. Also dropout.
#include "block.h"
#include "model.h"

namespace na {
namespace {

class LmHead : public Block {
 public:
  explicit LmHead(BlockContext& ctx) {
    const std::string tied = ctx.option<std::string>("tied_to", "");
    const std::string path = ctx.path_for("head");
    const int64_t V = ctx.dims().vocab, C = ctx.dims().d_model;
    if (tied.empty()) {
      weight_ = &ctx.store().create(path + ".weight", {V, C}, Init::normal(0.02f));
      return;
    }
    // A parameter ("tok.weight") or an embedding block's path ("tok").
    const bool is_param = ctx.store().find(tied) != nullptr;
    const std::string base = is_param ? strip_weight(tied) : tied;
    weight_ = ctx.store().find(is_param ? tied : tied + ".weight");
    NA_CHECK(weight_ != nullptr, ctx.at(), "lm_head: tied_to '", tied,
             "' names no parameter defined before the head (e.g. tok.weight)");
    // A factorised token embedding (<path>.weight (V, E), <path>.proj.weight (C, E)): the head
    // maps back through the same projection.
    proj_ = base.empty() ? nullptr : ctx.store().find(base + ".proj.weight");
    const Shape& ws = weight_->value().shape();
    const Shape want{V, C};
    if (proj_) {
      const Shape& ps = proj_->value().shape();
      const bool fits = ws.rank() == 2 && ws[0] == V && ps.rank() == 2 && ps[0] == C && ps[1] == ws[1];
      NA_CHECK(fits, ctx.at(), "lm_head: tied_to '", tied,
               "' is a factorised table ", ws, " with projection ", ps, "; expected (V, E) and (C, E) with V = ",
               V, ", C = ", C);
    } else {
      NA_CHECK(ws == want, ctx.at(), "lm_head: tied_to '", tied, "' has shape ", ws, ", not (V, C) = ", want);
    }
  }
  // x: (B, T, C) -> (B, T, V); factorised: (x proj) table^T.
  Var forward(const Var& x, const BlockInput&) const override {
    return linear(proj_ ? matmul(x, *proj_) : x, *weight_);
  }
  void describe(ModelAnatomy& a) const override {  // a tied table is a product here
    if (proj_) a.matmul_weights.push_back(proj_);
    a.matmul_weights.push_back(weight_);
  }

 private:
  // "tok.weight" -> "tok"; "" if the name does not end in ".weight".
  static std::string strip_weight(const std::string& name) {
    const std::string suffix = ".weight";
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      return "";
    return name.substr(0, name.size() - suffix.size());
  }

  Parameter* weight_ = nullptr;  // (V, C), or (V, E) when factorised
  Parameter* proj_ = nullptr;    // (C, E) when tied to a factorised embedding
};

class Dropout : public Block {
 public:
  explicit Dropout(BlockContext& ctx) : p_(ctx.option_or_default<float>("p", ctx.dims().dropout, 0.1f)) {
    const YAML::Node& d = ctx.dims().dropout;  // model.dropout: {p}
    NA_CHECK(p_ >= 0 && p_ < 1, ctx.has_option("p") || !d || !d["p"] ? ctx.at() : ctx.at(d["p"]),
             "dropout: p must be in [0, 1), got ", p_);
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
NANOATTN_REGISTER_BLOCK(lm_head,
                        "logits = x W^T; options: tied_to (a token embedding's table, e.g. tok.weight, or its path; "
                        "a factorised one gives (x proj) table^T), name",
                        [](BlockContext& c) { return std::make_unique<LmHead>(c); });
NANOATTN_REGISTER_BLOCK(dropout, "inverted dropout while training; options: p (0.1; unset: model.dropout.p)",
                        [](BlockContext& c) { return std::make_unique<Dropout>(c); });
}  // namespace na
