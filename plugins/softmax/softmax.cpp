// The `softmax` attention plugin: scaled dot-product attention (Vaswani et al. 2017) on the
// SDK's Q/K/V/O projections, computed by the fused O(T)-memory kernel in softmax_kernel.cpp.
//
// Options:  scale (float, default 0): the score multiplier; 0 means 1/sqrt(head dim).
// Capabilities: causal, bidirectional, key_padding_mask, kv_cache. No RNN form: its
// token-by-token state is the key/value cache (KvCache below), which grows with every token.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "nanoattn/parallel.h"

#include "nanoattn/attention.h"
#include "softmax_kernel.h"

namespace {

using namespace na;

// The keys and values seen so far, per (batch, head) i: keys transposed, kt[i][c * cap + j] =
// component c of token j's key (the scores then vectorise over tokens); v[i] row j = token j's
// value. Room for `cap` tokens, doubled when full (amortised O(1) per token); bytes() counts
// the rows held, not the room.
class KvCache : public AttentionState {
 public:
  KvCache(int64_t batch, int64_t heads, int64_t dk, int64_t dv)
      : batch(batch), heads(heads), dk(dk), dv(dv), kt(batch * heads), v(batch * heads), scores(batch * heads) {}
  size_t bytes() const override {
    return static_cast<size_t>(len * batch * heads * (dk + dv)) * sizeof(float);
  }
  // Makes room for one more token in every (b, h).
  void reserve_next() {
    if (len < cap) return;
    const int64_t grown = std::max<int64_t>(64, 2 * cap);
    for (std::vector<float>& k : kt) {
      std::vector<float> wider(static_cast<size_t>(dk * grown));
      for (int64_t c = 0; c < dk; ++c) std::copy_n(k.data() + c * cap, len, wider.data() + c * grown);
      k.swap(wider);
    }
    for (std::vector<float>& x : v) x.resize(static_cast<size_t>(dv * grown));
    for (std::vector<float>& s : scores) s.resize(static_cast<size_t>(grown));
    cap = grown;
  }

  int64_t batch, heads, dk, dv, len = 0, cap = 0;  // len: tokens cached
  std::vector<std::vector<float>> kt, v;  // [b * heads + h]: (dk, cap) and (cap, dv)
  std::vector<std::vector<float>> scores;  // scratch of cap floats per (b, h), kept warm
};

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

 public:
  std::unique_ptr<AttentionState> init_state(int64_t batch) const override {
    NA_CHECK(config_.causal, "softmax attention",
             "a KV cache generates causally, but this attention is configured bidirectional (causal: false)");
    NA_CHECK(batch >= 1, "softmax attention", "init_state: batch must be >= 1, got ", batch);
    return std::make_unique<KvCache>(batch, config_.n_heads, key_dim(), value_dim());
  }

 protected:
  // One token: appends k_t, v_t to the cache, then attends q_t to every cached row.
  // q, k: (B, H, dk)  v: (B, H, dv) -> (B, H, dv). Inference only (records nothing).
  Var attend_step(AttentionState& state, const Var& q, const Var& k, const Var& v,
                  const ParamSet&) const override {
    auto* c = dynamic_cast<KvCache*>(&state);
    NA_CHECK(c != nullptr, "softmax attention",
             "attend_step: the state was not made by this attention's init_state");
    const int64_t B = c->batch, H = c->heads, dk = c->dk, dv = c->dv;
    NA_CHECK(q.shape() == Shape({B, H, dk}) && k.shape() == q.shape() && v.shape() == Shape({B, H, dv}),
             "softmax attention", "attend_step: q ", q.shape(), ", k ", k.shape(), " and v ", v.shape(),
             " must be (B, H, ", dk, "), (B, H, ", dk, ") and (B, H, ", dv, ") with B = ", B,
             " (the cache's batch), H = ", H);
    NoGrad no_grad;
    Var out = tape().output({B, H, dv}, /*requires_grad=*/false);
    const float *qp = q.value().data(), *kp = k.value().data(), *vp = v.value().data();
    float* op = out.value().data();
    c->reserve_next();
    const int64_t j = c->len++, n = c->len, cap = c->cap;
    // Each (b, h) is independent and serial inside: the same bits for any thread count.
    parallel_for(B * H, grain_for(n * (dk + dv)), [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        float* kt = c->kt[i].data();
        for (int64_t d = 0; d < dk; ++d) kt[d * cap + j] = kp[i * dk + d];
        std::copy_n(vp + i * dv, dv, c->v[i].data() + j * dv);
        softmax_attention_cached_row(n, dk, dv, qp + i * dk, kt, cap, c->v[i].data(), scale_, c->scores[i].data(),
                                     op + i * dv);
      }
    });
    return out;
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
    i.capabilities.kv_cache = true;
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
