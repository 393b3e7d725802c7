// The `delta` attention plugin: the delta rule of Schlag, Irie and Schmidhuber (2021, "Linear
// Transformers Are Secretly Fast Weight Programmers"), a linear transformer whose fast-weight
// memory S is edited rather than only added to:
//
//   k_t = phi~(W_k x_t)   q_t = phi~(W_q x_t)   v_t = W_v x_t   beta_t = sigmoid(w_beta . x_t + b)
//   S_t = S_{t-1} + beta_t (v_t - S_{t-1} k_t) k_t^T       (write v_t, replacing what k_t held)
//   y_t = S_t q_t
//
// per head, where phi~(x) = phi(x) / (sum_i phi(x)_i + eps) is the paper's sum normalisation of
// a feature map phi shared with `linear` (elu+1, relu, DPFP, FAVOR+; plugins/linear/
// feature_maps.cpp is compiled into this plugin). With sum-normalised queries no further
// normaliser is needed (the paper's output is S_t q_t). beta_t is one learned scalar per head
// and token. The outputs of the heads go through the SDK's output projection.
//
// Causal only. The parallel (training) form is the fused kernel of delta_rule.cpp: sequential
// over time, parallel over (batch, head), with a hand-written backward through time that
// recomputes S from checkpoints. RNN form: the state is S, H x Dv x F floats per sequence.
#include <cmath>
#include <memory>

#include "delta_rule.h"
#include "feature_maps.h"
#include "nanoattn/attention.h"
#include "nanoattn/rng.h"

namespace na {

namespace {

namespace fm = feature_maps;
constexpr const char* kContext = "delta";
constexpr uint64_t kFavorTag = 0x64656c7461ull;  // "delta": favor's random matrix key stream

const PluginInfo& delta_info() {
  static const PluginInfo info = [] {
    PluginInfo i;
    i.name = "delta";
    i.description =
        "delta rule fast weights (Schlag, Irie, Schmidhuber 2021): S += beta (v - S phi(k)) "
        "phi(k)^T, y = S phi(q); causal, fused kernel with backward through time, RNN form";
    i.capabilities.causal = true;
    i.capabilities.recurrent = true;
    i.options = {
        {"feature_map",
         OptionType::String,
         std::string("dpfp"),
         "phi applied to queries and keys (linear's maps): elu (elu+1), relu, dpfp (Schlag et al. "
         "2021), favor (Performer positive random features)",
         {"elu", "relu", "dpfp", "favor"}},
        {"nu", OptionType::Int, int64_t{1}, "dpfp: expansion nu >= 1, giving 2 * head_dim * nu features"},
        {"features", OptionType::Int, int64_t{0}, "favor: number of random features m; 0 = head_dim"},
        {"sum_norm", OptionType::Bool, true,
         "divide phi(k) and phi(q) by the sum of their entries (+ eps), as in the paper; without "
         "it the update is stable only while beta |phi(k)|^2 < 2"},
        {"eps", OptionType::Float, 1e-6, "added to the sum in the sum normalisation"},
        {"checkpoint_every", OptionType::Int, int64_t{0},
         "the backward recomputes S from a copy saved every C steps; 0 = ceil(sqrt(T)). Memory "
         "per (batch, head): ceil(T / C) + C + 2 matrices of F x head_dim floats"},
    };
    i.test_variants = {
        {},  // dpfp, nu = 1
        {{"feature_map", std::string("elu")}, {"checkpoint_every", int64_t{2}}},
        {{"feature_map", std::string("favor")}, {"features", int64_t{12}}},
        {{"feature_map", std::string("dpfp")}, {"nu", int64_t{2}}, {"checkpoint_every", int64_t{7}}},
    };
    return i;
  }();
  return info;
}

class DeltaState : public AttentionState {
 public:
  DeltaState(int64_t batch, int64_t heads, int64_t dv, int64_t features)
      : S(Tensor::zeros({batch, heads, dv, features})) {}
  size_t bytes() const override { return static_cast<size_t>(S.numel()) * sizeof(float); }
  Tensor S;  // (B, H, Dv, F): the fast weights
};

class DeltaAttention : public ProjectedAttention {
 public:
  explicit DeltaAttention(const AttentionConfig& config) : ProjectedAttention(config) {
    NA_CHECK(config.causal, "plugin 'delta'",
             "the delta rule is causal only (S_t is built from tokens <= t); use it with "
             "causal: true");
    const Options& o = config.options;
    const std::string map = o.get_string("feature_map");
    NA_CHECK(map == "elu" || map == "relu" || map == "dpfp" || map == "favor", kContext,
             "option 'feature_map' is '", map, "': choose one of elu, relu, dpfp, favor");
    kind_ = fm::parse(map);
    const int64_t d = value_dim();
    nu_ = o.get_int("nu");
    NA_CHECK(nu_ >= 1, kContext, "option 'nu' (dpfp expansion) must be >= 1, got ", nu_);
    if (kind_ == fm::Kind::Dpfp)
      NA_CHECK(nu_ <= 2 * d, kContext, "option 'nu' = ", nu_, " must be <= 2 * head_dim = ", 2 * d);
    const int64_t m = o.get_int("features");
    NA_CHECK(m >= 0, kContext, "option 'features' (favor) must be >= 0 (0 = head_dim), got ", m);
    m_ = m > 0 ? m : d;
    sum_norm_ = o.get_bool("sum_norm");
    const double eps = o.get_float("eps");
    NA_CHECK(std::isfinite(eps) && eps >= 0.0, kContext, "option 'eps' must be finite and >= 0, got ", eps);
    eps_ = static_cast<float>(eps);
    checkpoint_every_ = o.get_int("checkpoint_every");
    NA_CHECK(checkpoint_every_ >= 0, kContext, "option 'checkpoint_every' must be >= 0 (0 = auto), got ",
             checkpoint_every_);
    F_ = fm::feature_dim(kind_, d, nu_, m_);
    if (kind_ == fm::Kind::Favor) favor_w_ = fm::favor_draw(m_, d, Rng::mix(config.seed, kFavorTag));
  }

  Var forward(const Var& x, const ParamSet& p, const AttentionContext& ctx) override {
    return run(x, p, ctx, [&](const Var& q, const Var& k, const Var& v, const Var& b) {
      return delta_rule(q, k, v, b, checkpoint_every_);
    });
  }
  Var reference(const Var& x, const ParamSet& p, const AttentionContext& ctx) override {
    return run(x, p, ctx, [](const Var& q, const Var& k, const Var& v, const Var& b) {
      return delta_rule_reference(q, k, v, b);
    });
  }

  std::unique_ptr<AttentionState> init_state(int64_t batch) const override {
    NA_CHECK(batch >= 1, kContext, "init_state: batch must be >= 1, got ", batch);
    return std::make_unique<DeltaState>(batch, config_.n_heads, value_dim(), F_);
  }

  // x_t: (B, C) -> (B, C), S advanced by one token in place. Inference only (no gradient).
  Var step(AttentionState& state, const Var& x_t, const ParamSet& p) const override {
    auto* st = dynamic_cast<DeltaState*>(&state);
    NA_CHECK(st != nullptr, kContext, "step: the state was not made by this attention's init_state");
    const int64_t C = config_.d_model, H = config_.n_heads, d = value_dim();
    NA_CHECK(x_t.rank() == 2 && x_t.dim(1) == C && x_t.dim(0) == st->S.dim(0), kContext, "step: input ",
             x_t.shape(), " must be (B, ", C, ") with B = ", st->S.dim(0), " (the state's batch)");
    const int64_t B = x_t.dim(0);
    NoGrad no_grad;
    Var qkv = linear(x_t, p["qkv.weight"], p["qkv.bias"]);  // (B, 3C)
    auto head = [&](int64_t start) { return reshape(slice(qkv, -1, start, start + C), {B, H, d}); };
    Var beta = sigmoid(linear(x_t, p["beta.weight"], p["beta.bias"]));  // (B, H)
    Var pq = features(head(0)), pk = features(head(C)), v = head(2 * C);
    Var y = tape().output({B, H, d}, /*requires_grad=*/false);
    delta_rule_step(B * H, F_, d, pq.value().data(), pk.value().data(), v.value().data(),
                    beta.value().data(), st->S.data(), y.value().data());
    return linear(reshape(y, {B, C}), p["proj.weight"], p["proj.bias"]);
  }

 protected:
  // beta_t = sigmoid(beta.weight x_t + beta.bias): (H, C), (H); starts near 0.5.
  std::vector<ParamSpec> extra_parameters() const override {
    return {{"beta.weight", {config_.n_heads, config_.d_model}, Init::normal(0.02f)},
            {"beta.bias", {config_.n_heads}, Init::zeros()}};
  }

  // The delta rule needs beta from the block input x, so forward/reference/step above do the
  // projections themselves; the SDK's inner hooks are not used.
  Var attend(const Var&, const Var&, const Var&, const ParamSet&, const AttentionContext&) override {
    throw Error(kContext, "internal: attend is not used (forward computes beta from x)");
  }
  Var attend_reference(const Var&, const Var&, const Var&, const ParamSet&, const AttentionContext&) override {
    throw Error(kContext, "internal: attend_reference is not used");
  }

 private:
  // The projections, features and beta around `rule`, then the output projection.
  template <class Rule>
  Var run(const Var& x, const ParamSet& p, const AttentionContext& ctx, Rule&& rule) const {
    NA_CHECK(ctx.key_padding_mask == nullptr, kContext,
             "key_padding_mask is not supported (capability key_padding_mask is off)");
    NA_CHECK(x.rank() == 3 && x.dim(2) == config_.d_model, kContext, "input ", x.shape(),
             " must be (B, T, ", config_.d_model, ")");
    const int64_t B = x.dim(0), T = x.dim(1), C = config_.d_model, H = config_.n_heads, d = value_dim();
    Var qkv = linear(x, p["qkv.weight"], p["qkv.bias"]);  // (B, T, 3C)
    auto heads = [&](int64_t start) { return split_heads(qkv, start, H, d); };  // (B, H, T, d)
    Var beta = permute(sigmoid(linear(x, p["beta.weight"], p["beta.bias"])), {0, 2, 1});  // (B, H, T)
    Var y = rule(features(heads(0)), features(heads(C)), heads(2 * C), beta);         // (B, H, T, d)
    return linear(reshape(permute(y, {0, 2, 1, 3}), {B, T, C}), p["proj.weight"], p["proj.bias"]);
  }

  // phi, then (optionally) the sum normalisation, along the last axis: (..., d) -> (..., F)
  Var features(const Var& x) const {
    Var phi;
    switch (kind_) {
      case fm::Kind::Elu: phi = fm::elu(x); break;
      case fm::Kind::Relu: phi = fm::relu(x); break;
      case fm::Kind::Dpfp: phi = fm::dpfp(x, nu_); break;
      case fm::Kind::Favor: phi = fm::favor(x, favor_w_); break;
    }
    if (!sum_norm_) return phi;
    return div(phi, add_scalar(sum(phi, -1, /*keepdim=*/true), eps_));
  }

  fm::Kind kind_ = fm::Kind::Dpfp;
  int64_t nu_ = 1, m_ = 0, F_ = 0, checkpoint_every_ = 0;
  bool sum_norm_ = true;
  float eps_ = 1e-6f;
  Tensor favor_w_;  // (m, head_dim): favor's fixed random draw
};

}  // namespace

}  // namespace na

NANOATTN_ATTENTION_PLUGIN(na::DeltaAttention, na::delta_info)
