// The `local` attention plugin: sliding-window softmax attention. Query t attends to the
// `window` keys t - window + 1 .. t (causal), or to every key with |t - s| < window
// (bidirectional: 2 window - 1 keys). The fused kernel is the shared sparse-pattern kernel
// (plugins/sparse_common) over the band's row lists: O(T w) time and memory. The RNN form keeps
// the last `window` keys and values of each (batch, head) in a ring buffer: constant memory.
// The reference is a dense T x T band-masked softmax of ordinary ops.
#include <cmath>
#include <memory>

#include "dense_reference.h"
#include "nanoattn/attention.h"
#include "sparse_attention.h"
#include "sparse_pattern.h"
#include "sparse_row.h"

namespace na {

namespace {

constexpr const char* kContext = "local attention";

const PluginInfo& local_info() {
  static const PluginInfo info = [] {
    PluginInfo i;
    i.name = "local";
    i.description =
        "sliding-window softmax attention: each query sees the last `window` keys (itself "
        "included), or |t - s| < window bidirectionally; O(T w); RNN form with a ring buffer";
    i.capabilities.causal = true;
    i.capabilities.bidirectional = true;
    i.capabilities.recurrent = true;
    i.options = {
        {"window", OptionType::Int, int64_t{64},
         "keys each query sees on each side, itself included: causal t-window+1..t, "
         "bidirectional |t - s| < window"},
    };
    // Windows smaller than the test lengths (5, 12, 24), so the band's edges are exercised.
    i.test_variants = {{{"window", int64_t{3}}}, {{"window", int64_t{8}}}};
    return i;
  }();
  return info;
}

// RNN state: the last `window` keys and values of every (batch, head), slot = position % w.
class LocalState : public AttentionState {
 public:
  LocalState(int64_t batch, int64_t heads, int64_t window, int64_t dk, int64_t dv)
      : K(Tensor::zeros({batch, heads, window, dk})),
        V(Tensor::zeros({batch, heads, window, dv})),
        scores(Tensor::zeros({window})) {}
  size_t bytes() const override {
    return static_cast<size_t>(K.numel() + V.numel() + scores.numel()) * sizeof(float);
  }

  Tensor K, V;     // (B, H, w, dk), (B, H, w, dv)
  Tensor scores;   // (w): one row's scratch
  int64_t steps = 0;  // tokens seen so far
};

class LocalAttention : public ProjectedAttention {
 public:
  explicit LocalAttention(const AttentionConfig& config) : ProjectedAttention(config) {
    window_ = config.options.get_int("window");
    NA_CHECK(window_ >= 1, kContext, "option 'window' must be >= 1, got ", window_);
    scale_ = static_cast<float>(1.0 / std::sqrt(static_cast<double>(key_dim())));
  }

  std::unique_ptr<AttentionState> init_state(int64_t batch) const override {
    NA_CHECK(config_.causal, kContext,
             "the recurrent form is causal, but this attention is configured bidirectional "
             "(causal: false)");
    NA_CHECK(batch >= 1, kContext, "init_state: batch must be >= 1, got ", batch);
    return std::make_unique<LocalState>(batch, config_.n_heads, window_, key_dim(), value_dim());
  }

 protected:
  Var attend(const Var& q, const Var& k, const Var& v, const ParamSet&,
             const AttentionContext& ctx) override {
    check_context(ctx);
    const int64_t T = q.dim(2), w = window_;
    const bool causal = config_.causal;
    SparsePattern pat = build_pattern(
        SparsePattern::Layout::Shared, 1, T, T, [=](int64_t, int64_t t, int32_t* out) {
          RowWriter r{out};
          const int64_t hi = causal ? t : std::min(T - 1, t + w - 1);
          for (int64_t s = std::max<int64_t>(0, t - w + 1); s <= hi; ++s) r.add(s);
          return r.n;
        });
    return sparse_attention(q, k, v, pat, scale_);
  }

  Var attend_reference(const Var& q, const Var& k, const Var& v, const ParamSet&,
                       const AttentionContext& ctx) override {
    check_context(ctx);
    const int64_t T = q.dim(2);
    Tensor mask = Tensor::zeros({1, 1, T, T});  // nonzero = not attended
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = 0; s < T; ++s) {
        const bool seen = config_.causal ? (s <= t && t - s < window_) : std::abs(t - s) < window_;
        mask[t * T + s] = seen ? 0.0f : 1.0f;
      }
    return masked_attention_reference(q, k, v, mask, Tensor(), scale_);
  }

  // One token: writes k_t, v_t into slot (steps % w), then attends over the min(steps + 1, w)
  // buffered keys in position order, with the kernel's own row code. Inference only (nothing
  // is recorded).
  Var attend_step(AttentionState& state, const Var& q, const Var& k, const Var& v,
                  const ParamSet&) const override {
    auto* st = dynamic_cast<LocalState*>(&state);
    NA_CHECK(st != nullptr, kContext, "attend_step: the state was not made by this attention's init_state");
    const int64_t B = st->K.dim(0), H = st->K.dim(1), w = st->K.dim(2), D = st->K.dim(3),
                  Dv = st->V.dim(3);
    NA_CHECK(q.shape() == Shape({B, H, D}) && k.shape() == q.shape() && v.shape() == Shape({B, H, Dv}),
             kContext, "attend_step: q ", q.shape(), ", k ", k.shape(), ", v ", v.shape(),
             " must be (B, H, ", D, "), (B, H, ", D, "), (B, H, ", Dv, ") with B = ", B,
             " (the state's batch), H = ", H);
    Var out = tape().output({B, H, Dv}, /*requires_grad=*/false);
    const int64_t pos = st->steps, slot = pos % w, n = std::min(pos + 1, w), first = pos + 1 - n;
    const float *qp = q.value().data(), *kp = k.value().data(), *vp = v.value().data();
    for (int64_t bh = 0; bh < B * H; ++bh) {
      float* K = st->K.data() + bh * w * D;
      float* V = st->V.data() + bh * w * Dv;
      std::copy(kp + bh * D, kp + (bh + 1) * D, K + slot * D);
      std::copy(vp + bh * Dv, vp + (bh + 1) * Dv, V + slot * Dv);
      auto key = [&](int64_t e) -> const float* { return K + ((first + e) % w) * D; };
      auto val = [&](int64_t e) -> const float* { return V + ((first + e) % w) * Dv; };
      sparse::attend_row(qp + bh * D, n, key, val, D, Dv, scale_, st->scores.data(),
                         out.value().data() + bh * Dv);
    }
    ++st->steps;
    return out;
  }

 private:
  void check_context(const AttentionContext& ctx) const {
    NA_CHECK(ctx.key_padding_mask == nullptr, kContext,
             "key_padding_mask is not supported (capability key_padding_mask is off)");
  }

  int64_t window_ = 64;
  float scale_ = 1.0f;
};

}  // namespace

}  // namespace na

NANOATTN_ATTENTION_PLUGIN(na::LocalAttention, na::local_info)
