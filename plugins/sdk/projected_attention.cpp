// IAttention defaults and the ProjectedAttention base class (Q/K/V/O projections).
#include <cmath>

#include "nanoattn/attention.h"
#include "nanoattn/profile.h"

namespace na {

std::unique_ptr<AttentionState> IAttention::init_state(int64_t) const {
  throw Error("attention", "this attention has no recurrent form (capability 'recurrent' is off)");
}

Var IAttention::step(AttentionState&, const Var&, const ParamSet&) const {
  throw Error("attention", "this attention has no recurrent form (capability 'recurrent' is off)");
}

ProjectedAttention::ProjectedAttention(const AttentionConfig& config) : config_(config) {
  NA_CHECK(config.d_model > 0 && config.n_heads > 0 && config.d_model % config.n_heads == 0,
           "attention", "d_model ", config.d_model, " must be a positive multiple of n_heads ",
           config.n_heads);
}

std::vector<ParamSpec> ProjectedAttention::parameters() const {
  const int64_t C = config_.d_model, qk = config_.n_heads * key_dim();
  // GPT-2 style: N(0, 0.02) weights, zero biases (the host may rescale residual projections).
  std::vector<ParamSpec> specs = {
      {"qkv.weight", {2 * qk + C, C}, Init::normal(0.02f)},
      {"qkv.bias", {2 * qk + C}, Init::zeros()},
      {"proj.weight", {C, C}, Init::normal(0.02f)},
      {"proj.bias", {C}, Init::zeros()},
  };
  for (ParamSpec& s : extra_parameters()) specs.push_back(std::move(s));
  return specs;
}

template <class Attend>
Var ProjectedAttention::project(const Var& x, const ParamSet& p, Attend&& attend) {
  NA_CHECK(x.rank() == 3 && x.dim(2) == config_.d_model, "attention", "input ", x.shape(),
           " must be (B, T, ", config_.d_model, ")");
  const int64_t B = x.dim(0), T = x.dim(1), H = config_.n_heads, dk = key_dim(), dv = value_dim();
  Var qkv = linear(x, p["qkv.weight"], p["qkv.bias"]);  // (B, T, 2 H dk + C)
  auto heads = [&](int64_t start, int64_t d) { return split_heads(qkv, start, H, d); };  // (B, H, T, d)
  Var y = attend(heads(0, dk), heads(H * dk, dk), heads(2 * H * dk, dv));  // (B, H, T, dv)
  y = reshape(permute(y, {0, 2, 1, 3}), {B, T, H * dv});
  return linear(y, p["proj.weight"], p["proj.bias"]);
}

Var ProjectedAttention::forward(const Var& x, const ParamSet& p, const AttentionContext& ctx) {
  return project(x, p, [&](const Var& q, const Var& k, const Var& v) {
    NA_PROFILE_OP("attend");  // the plugin's own kernel
    return attend(q, k, v, p, ctx);
  });
}

Var ProjectedAttention::reference(const Var& x, const ParamSet& p, const AttentionContext& ctx) {
  return project(x, p, [&](const Var& q, const Var& k, const Var& v) {
    return attend_reference(q, k, v, p, ctx);
  });
}

Var ProjectedAttention::step(AttentionState& state, const Var& x_t, const ParamSet& p) const {
  NA_CHECK(x_t.rank() == 2 && x_t.dim(1) == config_.d_model, "attention step", "input ",
           x_t.shape(), " must be (B, ", config_.d_model, ")");
  const int64_t B = x_t.dim(0), H = config_.n_heads, dk = key_dim(), dv = value_dim();
  Var qkv = linear(x_t, p["qkv.weight"], p["qkv.bias"]);  // (B, 2 H dk + C)
  auto heads = [&](int64_t start, int64_t d) { return reshape(slice(qkv, -1, start, start + H * d), {B, H, d}); };
  Var y = attend_step(state, heads(0, dk), heads(H * dk, dk), heads(2 * H * dk, dv), p);  // (B, H, dv)
  return linear(reshape(y, {B, H * dv}), p["proj.weight"], p["proj.bias"]);
}

Var ProjectedAttention::attend_step(AttentionState&, const Var&, const Var&, const Var&,
                                    const ParamSet&) const {
  throw Error("attention", "this attention has no recurrent form (capability 'recurrent' is off)");
}

}  // namespace na
