// The `linear` attention plugin: linear attention (Katharopoulos et al. 2020, "Transformers are
// RNNs") with a choice of feature maps (elu+1, relu, DPFP, FAVOR+ random features).
//
//   out_t = phi(q_t)^T S_t / (phi(q_t) . z_t + eps)
//   S_t = sum_s phi(k_s) v_s^T,  z_t = sum_s phi(k_s)
//
// with s <= t (causal: the fused O(T) kernel of causal_linear.cpp) or every s (bidirectional:
// a composite of matmuls). The recurrent form keeps S and z as the state: constant memory per
// generated token. The reference is the naive O(T^2) masked-kernel composite.
#include <cmath>
#include <memory>

#include "causal_linear.h"
#include "feature_maps.h"
#include "nanoattn/attention.h"
#include "nanoattn/profile.h"
#include "nanoattn/rng.h"

namespace na {

namespace {

namespace fm = feature_maps;
constexpr const char* kContext = "linear attention";
constexpr uint64_t kFavorTag = 0x6661766f72ull;  // "favor": the random matrix's key stream

const PluginInfo& linear_info() {
  static const PluginInfo info = [] {
    PluginInfo i;
    i.name = "linear";
    i.description =
        "Linear attention (Katharopoulos et al. 2020, Transformers are RNNs): elu+1, relu, "
        "DPFP or FAVOR+ feature maps; O(T) causal kernel and an RNN form with state (S, z)";
    i.capabilities.causal = true;
    i.capabilities.bidirectional = true;
    i.capabilities.recurrent = true;
    i.options = {
        {"feature_map",
         OptionType::String,
         std::string("elu"),
         "phi applied to queries and keys: elu (elu+1), relu, dpfp (Schlag et al. 2021), favor "
         "(Performer positive random features)",
         {"elu", "relu", "dpfp", "favor"}},
        {"key_dim", OptionType::Int, int64_t{0},
         "q/k projection width per head; 0 = d_model / n_heads (wider keys give linear "
         "attention more capacity)"},
        {"nu", OptionType::Int, int64_t{1},
         "dpfp: expansion nu >= 1, giving 2 * key_dim * nu features"},
        {"features", OptionType::Int, int64_t{0},
         "favor: number of random features m; 0 = key_dim"},
        {"redraw", OptionType::Bool, false,
         "favor: draw new random features at each training forward (from seed + a counter); "
         "evaluation and the recurrent form use the fixed draw"},
        {"eps", OptionType::Float, 1e-6, "added to the normaliser phi(q) . z"},
        {"normalize", OptionType::Bool, true,
         "divide by phi(q) . z + eps; false: out = phi(q)^T S (unnormalised)"},
    };
    i.test_variants = {
        {{"feature_map", std::string("elu")}},
        {{"feature_map", std::string("relu")}},
        {{"feature_map", std::string("dpfp")}, {"nu", int64_t{2}}},
        {{"feature_map", std::string("favor")}, {"features", int64_t{16}}},
        {{"normalize", false}},
        {{"key_dim", int64_t{16}}},
    };
    return i;
  }();
  return info;
}

// Recurrent state: the fast-weight matrix S and the normaliser z of every (batch, head).
class LinearState : public AttentionState {
 public:
  LinearState(int64_t batch, int64_t heads, int64_t features, int64_t dv)
      : S(Tensor::zeros({batch, heads, features, dv})),
        z(Tensor::zeros({batch, heads, features})) {}
  size_t bytes() const override {
    return static_cast<size_t>(S.numel() + z.numel()) * sizeof(float);
  }

  Tensor S;  // (B, H, F, Dv): sum_s phi(k_s) v_s^T
  Tensor z;  // (B, H, F):     sum_s phi(k_s)
};

class LinearAttention : public ProjectedAttention {
 public:
  explicit LinearAttention(const AttentionConfig& config) : ProjectedAttention(config) {
    // The host resolves every declared option (given or defaulted) before creating us.
    const Options& o = config.options;
    const std::string map = o.get_string("feature_map");
    const int64_t kd = o.get_int("key_dim");
    nu_ = o.get_int("nu");
    const int64_t features = o.get_int("features");
    redraw_ = o.get_bool("redraw");
    const double eps = o.get_float("eps");
    normalize_ = o.get_bool("normalize");

    NA_CHECK(map == "elu" || map == "relu" || map == "dpfp" || map == "favor", kContext,
             "option 'feature_map' is '", map, "': choose one of elu, relu, dpfp, favor");
    kind_ = fm::parse(map);
    NA_CHECK(kd >= 0, kContext, "option 'key_dim' must be >= 0 (0 = d_model / n_heads = ",
             config.d_model / config.n_heads, "), got ", kd);
    key_dim_ = kd > 0 ? kd : config.d_model / config.n_heads;
    NA_CHECK(nu_ >= 1, kContext, "option 'nu' (dpfp expansion) must be >= 1, got ", nu_);
    if (kind_ == fm::Kind::Dpfp)
      NA_CHECK(nu_ <= 2 * key_dim_, kContext, "option 'nu' = ", nu_,
               " must be <= 2 * key_dim = ", 2 * key_dim_,
               " (a roll by more than 2 * key_dim repeats a feature)");
    NA_CHECK(features >= 0, kContext, "option 'features' (favor random features) must be >= 0 ",
             "(0 = key_dim), got ", features);
    m_ = features > 0 ? features : key_dim_;
    NA_CHECK(std::isfinite(eps) && eps >= 0.0, kContext,
             "option 'eps' must be finite and >= 0, got ", eps);
    eps_ = static_cast<float>(eps);
    F_ = fm::feature_dim(kind_, key_dim_, nu_, m_);
    if (kind_ == fm::Kind::Favor)
      favor_w_ = fm::favor_draw(m_, key_dim_, Rng::mix(config.seed, kFavorTag));
  }

  // Causal elu + 1 (the default) runs the fused kernel on the packed projection: it applies
  // the feature map itself and reads q, k, v where the projection wrote them, so neither the
  // split heads nor the features are stored. Every other case takes ProjectedAttention's path.
  Var forward(const Var& x, const ParamSet& p, const AttentionContext& ctx) override {
    if (!(config_.causal && kind_ == fm::Kind::Elu)) return ProjectedAttention::forward(x, p, ctx);
    check_context(ctx);
    NA_CHECK(x.rank() == 3 && x.dim(2) == config_.d_model, "attention", "input ", x.shape(),
             " must be (B, T, ", config_.d_model, ")");
    const int64_t H = config_.n_heads, dk = key_dim_, dv = value_dim();
    Var qkv = linear(x, p["qkv.weight"], p["qkv.bias"]);  // (B, T, 2 H dk + H dv)
    Var y;
    {
      NA_PROFILE_OP("attend");
      y = causal_linear_attention_packed(qkv, H, dk, dv, 0, H * dk, 2 * H * dk, eps_, normalize_,
                                         KernelMap::EluPlusOne);  // (B, T, H dv)
    }
    return linear(y, p["proj.weight"], p["proj.bias"]);
  }

  // Recurrent form: one state per sequence batch, S and z zeroed. Size: B H (F Dv + F) floats,
  // whatever the number of steps.
  std::unique_ptr<AttentionState> init_state(int64_t batch) const override {
    NA_CHECK(config_.causal, kContext,
             "the recurrent form is causal, but this attention is configured bidirectional "
             "(causal: false)");
    NA_CHECK(batch >= 1, kContext, "init_state: batch must be >= 1, got ", batch);
    return std::make_unique<LinearState>(batch, config_.n_heads, F_, value_dim());
  }

 protected:
  int64_t key_dim() const override { return key_dim_; }

  Var attend(const Var& q, const Var& k, const Var& v, const ParamSet&,
             const AttentionContext& ctx) override {
    check_context(ctx);
    Tensor w = favor_matrix(ctx.training);
    Var pq = features(q, w), pk = features(k, w);  // (B, H, T, F)
    return config_.causal ? causal_linear_attention(pq, pk, v, eps_, normalize_)
                          : bidirectional_linear_attention(pq, pk, v, eps_, normalize_);
  }

  Var attend_reference(const Var& q, const Var& k, const Var& v, const ParamSet&,
                       const AttentionContext& ctx) override {
    check_context(ctx);
    Tensor w = favor_matrix(ctx.training);
    return linear_attention_reference(features(q, w), features(k, w), v, eps_, normalize_,
                                      config_.causal);
  }

  // One token: q_t, k_t (B, H, dk), v_t (B, H, dv) -> (B, H, dv). Inference only: it updates
  // `state` in place (S += phi(k) v^T, z += phi(k)) and is not differentiated (nothing is
  // recorded; the output requires no gradient). Uses the fixed feature draw, like evaluation.
  Var attend_step(AttentionState& state, const Var& q, const Var& k, const Var& v,
                  const ParamSet&) const override {
    auto* st = dynamic_cast<LinearState*>(&state);
    NA_CHECK(st != nullptr, kContext,
             "attend_step: the state was not made by this attention's init_state");
    const int64_t B = st->S.dim(0), H = st->S.dim(1), F = st->S.dim(2), Dv = st->S.dim(3);
    NA_CHECK(q.rank() == 3 && q.shape() == k.shape() && q.dim(0) == B && q.dim(1) == H &&
                 q.dim(2) == key_dim_ && v.shape() == Shape({B, H, Dv}),
             kContext, "attend_step: q ", q.shape(), ", k ", k.shape(), " and v ", v.shape(),
             " must be (B, H, ", key_dim_, "), (B, H, ", key_dim_, ") and (B, H, ", Dv,
             ") with B = ", B, " (the state's batch), H = ", H);
    NoGrad no_grad;
    Tensor w = favor_matrix(/*training=*/false);
    const float* pq = features(q, w).value().data();  // (B, H, F)
    const float* pk = features(k, w).value().data();
    Var out = tape().output({B, H, Dv}, /*requires_grad=*/false);
    // The fused kernel's own per-token code: stepping reproduces the parallel form bit for bit.
    linear_attention_step(B * H, F, Dv, pq, pk, v.value().data(), st->S.data(), st->z.data(),
                          out.value().data(), eps_, normalize_);
    return out;
  }

 private:
  void check_context(const AttentionContext& ctx) const {
    NA_CHECK(ctx.key_padding_mask == nullptr, kContext,
             "key_padding_mask is not supported (capability key_padding_mask is off)");
  }

  // The favor random matrix for this call (undefined for other feature maps): the fixed draw,
  // or with redraw in training a new one from (seed, counter), in the tape's arena.
  Tensor favor_matrix(bool training) const {
    if (kind_ != fm::Kind::Favor) return Tensor();
    if (!(redraw_ && training)) return favor_w_;
    Tensor w = tape().alloc({m_, key_dim_});
    fm::favor_fill(w, Rng::mix(Rng::mix(config_.seed, kFavorTag), ++draws_));
    return w;
  }

  Var features(const Var& x, const Tensor& w) const {
    switch (kind_) {
      case fm::Kind::Elu: return fm::elu(x);
      case fm::Kind::Relu: return fm::relu(x);
      case fm::Kind::Dpfp: return fm::dpfp(x, nu_);
      case fm::Kind::Favor: return fm::favor(x, w);
    }
    return x;
  }

  fm::Kind kind_ = fm::Kind::Elu;
  int64_t key_dim_ = 0, nu_ = 1, m_ = 0, F_ = 0;
  bool redraw_ = false, normalize_ = true;
  float eps_ = 1e-6f;
  Tensor favor_w_;              // (m, key_dim): the fixed draw
  mutable uint64_t draws_ = 0;  // redraws so far (training forwards with redraw on)
};

}  // namespace

}  // namespace na

NANOATTN_ATTENTION_PLUGIN(na::LinearAttention, na::linear_info)
