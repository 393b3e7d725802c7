// positional: adds a position signal to x (B, T, C): learned (max_len, C) table, fixed
// sinusoids (Vaswani et al. 2017), or none.
#include <cmath>

#include "block.h"
#include "model.h"

namespace na {
namespace {

class Positional : public Block {
 public:
  explicit Positional(BlockContext& ctx) {
    kind_ = ctx.option<std::string>("kind", "learned");
    const std::string path = ctx.path_for("pos");
    const int64_t L = ctx.dims().max_len, C = ctx.dims().d_model;
    if (kind_ == "learned") {
      table_ = &ctx.store().create(path + ".weight", {L, C}, Init::normal(0.02f));
    } else if (kind_ == "sinusoidal") {
      fixed_ = Tensor::empty({L, C});
      for (int64_t t = 0; t < L; ++t)
        for (int64_t i = 0; i < C; ++i) {
          double freq = std::pow(10000.0, -2.0 * (i / 2) / static_cast<double>(C));
          fixed_[t * C + i] = static_cast<float>(i % 2 ? std::cos(t * freq) : std::sin(t * freq));
        }
    } else {
      NA_CHECK(kind_ == "none", ctx.at(), "positional: kind '", kind_, "' is not one of learned, sinusoidal, none");
    }
  }
  Var forward(const Var& x, const BlockInput& in) const override {
    if (kind_ == "none") return x;
    Var table = table_ ? table_->var() : tape().leaf(fixed_);
    return add(x, slice(table, 0, 0, in.T));  // (T, C) broadcast over B
  }

 private:
  std::string kind_;
  Parameter* table_ = nullptr;
  Tensor fixed_;
};

}  // namespace
NANOATTN_REGISTER_BLOCK(positional, "position signal; options: kind (learned|sinusoidal|none), name",
                        [](BlockContext& c) { return std::make_unique<Positional>(c); });
}  // namespace na
