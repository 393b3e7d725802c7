// positional: adds a position signal to x (B, T, C) for positions pos0 .. pos0+T-1: learned
// (max_len, C) table, fixed sinusoids (Vaswani et al. 2017), or none. Learned positions end
// at max_len; sinusoids are unbounded: rows below max_len come from a precomputed table,
// later ones (a long recurrent run) are computed on the fly with the same formula.
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
      sinusoids(fixed_, 0);
    } else {
      NA_CHECK(kind_ == "none", ctx.at(), "positional: kind '", kind_, "' is not one of learned, sinusoidal, none");
    }
    path_ = path.empty() ? "positional" : path;
  }
  Var forward(const Var& x, const BlockInput& in) const override {
    if (kind_ == "none") return x;
    const int64_t p0 = in.pos0, p1 = in.pos0 + in.T;
    if (table_) {
      NA_CHECK(p1 <= table_->value().dim(0), path_, "learned positions end at max_len ",
               table_->value().dim(0), ": cannot add position ", p1 - 1,
               " (use kind: sinusoidal or none for unbounded positions, or a larger max_len)");
      return add(x, slice(table_->var(), 0, p0, p1));  // (T, C) broadcast over B
    }
    if (p1 <= fixed_.dim(0)) return add(x, slice(tape().leaf(fixed_), 0, p0, p1));
    Tensor rows = tape().alloc({in.T, fixed_.dim(1)});  // past the table: on the fly
    sinusoids(rows, p0);
    return add(x, tape().leaf(rows));
  }

 private:
  // rows (n, C) = the sinusoids of positions p0 .. p0+n-1.
  static void sinusoids(const Tensor& rows, int64_t p0) {
    const int64_t n = rows.dim(0), C = rows.dim(1);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < C; ++i) {
        const double t = static_cast<double>(p0 + r);
        double freq = std::pow(10000.0, -2.0 * (i / 2) / static_cast<double>(C));
        rows[r * C + i] = static_cast<float>(i % 2 ? std::cos(t * freq) : std::sin(t * freq));
      }
  }

  std::string kind_, path_;
  Parameter* table_ = nullptr;
  Tensor fixed_;
};

}  // namespace
NANOATTN_REGISTER_BLOCK(positional, "position signal; options: kind (learned|sinusoidal|none), name",
                        [](BlockContext& c) { return std::make_unique<Positional>(c); });
}  // namespace na
