// causal_conv: a causal grouped 1-D convolution over time, x (B, T, C) -> (B, T, C), output t
// seeing inputs t-K+1 .. t (zeros before the start). Depthwise by default (groups = C): cheap
// local token mixing next to attention. Recurrent form: a ring of the last K-1 inputs.
#include <algorithm>

#include "block.h"
#include "model.h"
#include "recurrent.h"

namespace na {
namespace {

class CausalConv : public Block {
 public:
  explicit CausalConv(BlockContext& ctx) {
    const std::string path = ctx.path_for("conv");
    const int64_t C = ctx.dims().d_model;
    K_ = ctx.option<int64_t>("kernel", 4);
    G_ = ctx.option<int64_t>("groups", C);
    const bool bias = ctx.option<bool>("bias", true);
    NA_CHECK(K_ >= 1, ctx.at(), "causal_conv: kernel must be >= 1, got ", K_);
    NA_CHECK(G_ >= 1 && C % G_ == 0, ctx.at(), "causal_conv: groups ", G_, " must be >= 1 and divide d_model ", C,
             " (", C, " = depthwise, 1 = a full convolution)");
    weight_ = &ctx.store().create(path + ".weight", {C, C / G_, K_}, Init::normal(0.02f));
    if (bias) bias_ = &ctx.store().create(path + ".bias", {C}, Init::zeros());
  }

  // Each weight multiplies one input value per output position: a product like a matrix's.
  void describe(ModelAnatomy& a) const override { a.matmul_weights.push_back(weight_); }
  Var forward(const Var& x, const BlockInput& in) const override {
    if (in.state) return step(x, in);
    return causal_conv1d(x, *weight_, bias_ ? bias_->var() : Var(), static_cast<int>(G_));
  }

  void init_state(RecurrentState& state) const override {
    state.add(this, std::make_unique<Ring>(state.batch(), K_ - 1, weight_->value().dim(0)));
  }

 private:
  // The last K-1 inputs of each sequence, (B, K-1, C); `oldest` is the slot of x[t-K+1].
  // Zeros at first: the parallel form's left padding.
  struct Ring : BlockState {
    Ring(int64_t B, int64_t n, int64_t C) : x(Tensor::zeros({B, n, C})) {}
    size_t bytes() const override { return static_cast<size_t>(x.numel()) * sizeof(float); }
    Tensor x;
    int64_t oldest = 0;
  };

  // x: (B, 1, C) -> (B, 1, C). Inference only (Model::step runs under NoGrad): a direct loop,
  // summing bias, then taps k = 0 .. K-1 like the parallel kernel.
  Var step(const Var& x, const BlockInput& in) const {
    NA_CHECK(in.T == 1, "causal_conv", "recurrent mode runs one token at a time, got T = ", in.T);
    Ring& ring = in.state->next<Ring>(this);
    const int64_t B = x.dim(0), C = x.dim(2), n = K_ - 1, cg = C / G_;
    const float* w = weight_->value().data();  // (C, C/G, K)
    const float* xt = x.value().data();
    Var out = tape().output({B, 1, C}, /*requires_grad=*/false);
    float* y = out.value().data();
    for (int64_t b = 0; b < B; ++b) {
      float* yb = y + b * C;
      for (int64_t o = 0; o < C; ++o) yb[o] = bias_ ? bias_->value()[o] : 0.0f;
      for (int64_t k = 0; k < K_; ++k) {  // tap k reads x[t - (K-1) + k]
        const float* xk = k == n ? xt + b * C : ring.x.data() + (b * n + (ring.oldest + k) % n) * C;
        for (int64_t o = 0; o < C; ++o) {
          const float* wo = w + o * cg * K_ + k;
          const float* xg = xk + (o / cg) * cg;
          float acc = 0.0f;
          for (int64_t c = 0; c < cg; ++c) acc += wo[c * K_] * xg[c];
          yb[o] += acc;
        }
      }
    }
    if (n > 0) {  // x_t replaces the oldest input
      for (int64_t b = 0; b < B; ++b)
        std::copy(xt + b * C, xt + (b + 1) * C, ring.x.data() + (b * n + ring.oldest) * C);
      ring.oldest = (ring.oldest + 1) % n;
    }
    return out;
  }

  int64_t K_ = 4, G_ = 1;
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
};

}  // namespace
NANOATTN_REGISTER_BLOCK(causal_conv,
                        "causal grouped conv over time (sees the last `kernel` tokens); options: kernel (4), "
                        "groups (d_model = depthwise; 1 = full), bias (true), name",
                        [](BlockContext& c) { return std::make_unique<CausalConv>(c); });
}  // namespace na
