// Cosine attention: softmax over the cosine similarity of queries and keys, sharpened by a
// learned temperature per head. A complete out-of-tree plugin in one file.
#include <cmath>

#include <nanoattn/attention.h>

namespace {

using namespace na;

class CosineAttention : public ProjectedAttention {
 public:
  explicit CosineAttention(const AttentionConfig& config) : ProjectedAttention(config) {}

 protected:
  // Declared, so the host allocates, names, saves and optimises it: one log-temperature per
  // head, shaped to broadcast over the (B, H, T, S) scores.
  std::vector<ParamSpec> extra_parameters() const override {
    return {{"log_tau", {config_.n_heads, 1, 1}, Init::zeros()}};
  }

  // q, k: (B, H, T, dk)  v: (B, H, T, dv) -> (B, H, T, dv), composed of nanoattn ops, so the
  // backward comes for free.
  Var attend(const Var& q, const Var& k, const Var& v, const ParamSet& p,
             const AttentionContext&) override {
    const float dk = static_cast<float>(q.dim(-1));
    // rmsnorm without weight gives rows of norm sqrt(dk): their products / dk are cosines.
    Var cosine = scale(matmul(rmsnorm(q, Var()), rmsnorm(k, Var()), false, true), 1.0f / dk);
    Var scores = mul(cosine, scale(exp(p["log_tau"]), std::sqrt(dk)));
    return matmul(softmax(scores, config_.causal), v);
  }

  // The naive reference the conformance suite compares against: attend() is already one.
  Var attend_reference(const Var& q, const Var& k, const Var& v, const ParamSet& p,
                       const AttentionContext& ctx) override {
    return attend(q, k, v, p, ctx);
  }
};

const PluginInfo& cosine_info() {
  static const PluginInfo info{
      "cosine",
      "cosine-similarity softmax attention with a learned temperature per head (example plugin)",
      {.causal = true, .bidirectional = true},
      {}};
  return info;
}

}  // namespace

NANOATTN_ATTENTION_PLUGIN(CosineAttention, cosine_info)
