// The `softmax` attention plugin: scaled dot-product attention (Vaswani et al. 2017) on the
// SDK's Q/K/V/O projections, computed by the fused O(T)-memory kernel in softmax_kernel.cpp.
//
// Options:  scale (float, default 0): the score multiplier; 0 means 1/sqrt(head dim).
// Capabilities: causal, bidirectional, key_padding_mask. No recurrent form (the state of a
// softmax transformer is its whole key/value cache, which grows with every token).
#include <cmath>

#include "nanoattn/attention.h"
#include "softmax_kernel.h"

namespace {

using namespace na;

class SoftmaxAttention : public ProjectedAttention {
 public:
  explicit SoftmaxAttention(const AttentionConfig& config) : ProjectedAttention(config) {
    const double s = config_.options.has("scale") ? config_.options.get_float("scale") : 0.0;
    NA_CHECK(std::isfinite(s) && s >= 0.0, "softmax attention",
             "option scale = ", s, " must be > 0, or 0 for the default 1/sqrt(head dim)");
    scale_ = s > 0.0 ? static_cast<float>(s)
                     : static_cast<float>(1.0 / std::sqrt(static_cast<double>(key_dim())));
  }

 protected:
  Var attend(const Var& q, const Var& k, const Var& v, const ParamSet&,
             const AttentionContext& ctx) override {
    return softmax_attention(q, k, v, scale_, config_.causal, ctx.key_padding_mask);
  }

  Var attend_reference(const Var& q, const Var& k, const Var& v, const ParamSet&,
                       const AttentionContext& ctx) override {
    return softmax_attention_reference(q, k, v, scale_, config_.causal, ctx.key_padding_mask);
  }

 private:
  float scale_ = 1.0f;
};

const PluginInfo& softmax_info() {
  static const PluginInfo info = [] {
    PluginInfo i;
    i.name = "softmax";
    i.description =
        "scaled dot-product softmax attention (Vaswani et al. 2017), fused, O(T) memory";
    i.capabilities.causal = true;
    i.capabilities.bidirectional = true;
    i.capabilities.key_padding_mask = true;
    i.options = {{"scale", OptionType::Float, OptionValue{0.0},
                  "score multiplier; 0 = 1/sqrt(head dim)"}};
    // The defaults, and an explicit scale so the option path is exercised too.
    i.test_variants = {{}, {{"scale", OptionValue{0.5}}}};
    return i;
  }();
  return info;
}

}  // namespace

NANOATTN_ATTENTION_PLUGIN(SoftmaxAttention, softmax_info)
