// The `fastformer` attention plugin: Fastformer (Wu et al. 2021, "Fastformer: Additive
// Attention Can Be All You Need"), in its bidirectional form (the paper's) and a causal form
// by cumulative sums, with an RNN form.
//
// Per head, with q_t, k_t, v_t (d = C / H) from the SDK's Q/K/V projections, s = 1/sqrt(d):
//   global query   g^q = sum_t softmax_t(s w_q . q_t) q_t           (additive attention)
//   p_t = g^q * k_t                                                   (elementwise)
//   global key     g^k = sum_t softmax_t(s w_k . p_t) p_t
//   u_t = g^k * v_t                                                   (elementwise)
// then the heads are concatenated, the output transform is the SDK's proj (a C x C linear
// layer, the paper's "linear transformation" of u), and the query is added back (the paper's
// residual of q): out_t = proj(u_t) + q_t. w_q, w_k are one learned vector per head.
//
// Causal form: every pooling runs over s <= t only (g^q_t, g^k_t: running softmax-weighted
// means), so p_t = g^q_t * k_t, u_t = g^k_t * v_t. Computed by the fused kernel of
// additive_pool.cpp: the recurrence s_t = s_{t-1} + exp(a_t) x_t, z_t = z_{t-1} + exp(a_t),
// g_t = s_t / z_t with a running max shift. RNN form: for each head and each of the two
// poolings, (s, z, m): 2 (d + 2) floats per head, whatever the number of tokens.
#include <cmath>
#include <limits>
#include <memory>

#include "additive_pool.h"
#include "nanoattn/attention.h"
#include "nanoattn/parallel.h"

namespace na {

namespace {

constexpr const char* kContext = "fastformer";

const PluginInfo& fastformer_info() {
  static const PluginInfo info = [] {
    PluginInfo i;
    i.name = "fastformer";
    i.description =
        "Fastformer (Wu et al. 2021): additive attention pools a global query and a global "
        "key, O(T d); bidirectional, causal by cumulative sums, RNN form";
    i.capabilities.causal = true;
    i.capabilities.bidirectional = true;
    i.capabilities.recurrent = true;
    i.options = {
        {"query_residual", OptionType::Bool, true,
         "add the query to the output transform's result (the paper's residual of q)"},
    };
    i.test_variants = {{}, {{"query_residual", false}}};
    return i;
  }();
  return info;
}

// RNN state: the two running poolings (global query, global key) of every (batch, head).
class FastformerState : public AttentionState {
 public:
  FastformerState(int64_t batch, int64_t heads, int64_t d)
      : s(Tensor::zeros({2, batch, heads, d})),
        z(Tensor::zeros({2, batch, heads})),
        m(Tensor::empty({2, batch, heads})) {
    m.fill(-std::numeric_limits<float>::infinity());
  }
  size_t bytes() const override { return static_cast<size_t>(s.numel() + z.numel() + m.numel()) * sizeof(float); }

  Tensor s;  // (2, B, H, d): sum exp(a - m) x, for the query pooling [0] and the key pooling [1]
  Tensor z;  // (2, B, H):    sum exp(a - m)
  Tensor m;  // (2, B, H):    running max of the scores
};

class Fastformer : public ProjectedAttention {
 public:
  explicit Fastformer(const AttentionConfig& config) : ProjectedAttention(config) {
    residual_ = config.options.get_bool("query_residual");
    scale_ = static_cast<float>(1.0 / std::sqrt(static_cast<double>(value_dim())));
  }

  Var forward(const Var& x, const ParamSet& p, const AttentionContext& ctx) override {
    return project(x, p, [&](const Var& q, const Var& k, const Var& v) { return attend(q, k, v, p, ctx); });
  }
  Var reference(const Var& x, const ParamSet& p, const AttentionContext& ctx) override {
    return project(x, p, [&](const Var& q, const Var& k, const Var& v) {
      return attend_reference(q, k, v, p, ctx);
    });
  }

  std::unique_ptr<AttentionState> init_state(int64_t batch) const override {
    NA_CHECK(config_.causal, kContext,
             "the recurrent form is causal, but this attention is configured bidirectional "
             "(causal: false)");
    NA_CHECK(batch >= 1, kContext, "init_state: batch must be >= 1, got ", batch);
    return std::make_unique<FastformerState>(batch, config_.n_heads, value_dim());
  }

  // x_t: (B, C) -> (B, C), advancing both poolings by one token. Inference only (no gradient).
  Var step(AttentionState& state, const Var& x_t, const ParamSet& p) const override {
    auto* st = dynamic_cast<FastformerState*>(&state);
    NA_CHECK(st != nullptr, kContext, "step: the state was not made by this attention's init_state");
    const int64_t C = config_.d_model, H = config_.n_heads, d = value_dim();
    NA_CHECK(x_t.rank() == 2 && x_t.dim(1) == C && x_t.dim(0) == st->z.dim(1), kContext, "step: input ",
             x_t.shape(), " must be (B, ", C, ") with B = ", st->z.dim(1), " (the state's batch)");
    const int64_t B = x_t.dim(0), BH = B * H;
    NoGrad no_grad;
    Var qkv = linear(x_t, p["qkv.weight"], p["qkv.bias"]);  // (B, 3C): [q | k | v]
    Var u = tape().output({B, C}, /*requires_grad=*/false);
    float* scratch = tape().scratch<float>(BH * 2 * d);
    const float* in = qkv.value().data();
    const float* wq = p["query_att.weight"].value().data();
    const float* wk = p["key_att.weight"].value().data();
    float* uv = u.value().data();
    float *s = st->s.data(), *z = st->z.data(), *m = st->m.data();
    parallel_for(BH, grain_for(4 * d), [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        const int64_t b = n / H, h = n % H;
        const float* q = in + b * 3 * C + h * d;
        const float* k = q + C;
        const float* v = q + 2 * C;
        float* gq = scratch + n * 2 * d;  // then p = g^q * k
        float* gk = gq + d;
        additive_pool_token(d, q, wq + h * d, scale_, s + n * d, z[n], m[n], gq);
        for (int64_t i = 0; i < d; ++i) gq[i] = gq[i] * k[i];
        additive_pool_token(d, gq, wk + h * d, scale_, s + (BH + n) * d, z[BH + n], m[BH + n], gk);
        float* un = uv + b * C + h * d;
        for (int64_t i = 0; i < d; ++i) un[i] = gk[i] * v[i];
      }
    });
    Var y = linear(u, p["proj.weight"], p["proj.bias"]);
    return residual_ ? add(y, slice(qkv, -1, 0, C)) : y;
  }

 protected:
  std::vector<ParamSpec> extra_parameters() const override {
    const int64_t H = config_.n_heads, d = value_dim();
    return {{"query_att.weight", {H, d}, Init::normal(0.02f)},
            {"key_att.weight", {H, d}, Init::normal(0.02f)}};
  }

  // q, k, v: (B, H, T, d) -> u: (B, H, T, d) (before the output transform and the residual)
  Var attend(const Var& q, const Var& k, const Var& v, const ParamSet& p,
             const AttentionContext& ctx) override {
    check_context(ctx);
    const Var &wq = p["query_att.weight"], &wk = p["key_att.weight"];
    if (config_.causal) {
      Var pk = mul(causal_additive_pool(q, wq, scale_), k);
      return mul(causal_additive_pool(pk, wk, scale_), v);
    }
    Var pk = mul(bidirectional_additive_pool(q, wq, scale_), k);  // (B, H, 1, d) * (B, H, T, d)
    return mul(bidirectional_additive_pool(pk, wk, scale_), v);
  }

  Var attend_reference(const Var& q, const Var& k, const Var& v, const ParamSet& p,
                       const AttentionContext& ctx) override {
    check_context(ctx);
    const Var &wq = p["query_att.weight"], &wk = p["key_att.weight"];
    Var pk = mul(additive_pool_reference(q, wq, scale_, config_.causal), k);
    return mul(additive_pool_reference(pk, wk, scale_, config_.causal), v);
  }

 private:
  void check_context(const AttentionContext& ctx) const {
    NA_CHECK(ctx.key_padding_mask == nullptr, kContext,
             "key_padding_mask is not supported (capability key_padding_mask is off)");
  }

  // The SDK's projections around `mix`, plus the query residual after the output transform.
  template <class Mix>
  Var project(const Var& x, const ParamSet& p, Mix&& mix) {
    NA_CHECK(x.rank() == 3 && x.dim(2) == config_.d_model, kContext, "input ", x.shape(),
             " must be (B, T, ", config_.d_model, ")");
    const int64_t B = x.dim(0), T = x.dim(1), C = config_.d_model, H = config_.n_heads, d = value_dim();
    Var qkv = linear(x, p["qkv.weight"], p["qkv.bias"]);  // (B, T, 3C)
    auto heads = [&](int64_t start) { return split_heads(qkv, start, H, d); };  // (B, H, T, d)
    Var u = mix(heads(0), heads(C), heads(2 * C));  // (B, H, T, d)
    Var y = linear(reshape(permute(u, {0, 2, 1, 3}), {B, T, C}), p["proj.weight"], p["proj.bias"]);
    return residual_ ? add(y, slice(qkv, -1, 0, C)) : y;  // + q (heads concatenated)
  }

  bool residual_ = true;
  float scale_ = 1.0f;
};

}  // namespace

}  // namespace na

NANOATTN_ATTENTION_PLUGIN(na::Fastformer, na::fastformer_info)
