// The `linformer` attention plugin: Linformer (Wang et al. 2020, "Linformer: Self-Attention
// with Linear Complexity"). Keys and values are projected along the sequence axis by learned
// (k x T_max) matrices E and F before a softmax attention:
//
//   K' = E[:, :T] K   (k x d)     V' = F[:, :T] V   (k x d)
//   out = softmax(Q K'^T / sqrt(d)) V'                 (T x d)
//
// O(T k d) time and O(T k) memory instead of O(T^2). Every row of K' mixes every position, so
// Linformer is bidirectional only (an encoder): a causal model is refused. Sequences shorter
// than T_max (the model's max_len) use the first T columns of E and F, as the reference
// implementations do.
//
// Options: k (projection dim), sharing (none: E_h, F_h per head; headwise: one E, F shared by
// every head of the layer, the paper's "headwise sharing"), share_kv (F = E, the paper's
// "key-value sharing"). The paper's "layerwise sharing" (one E for every layer) is sharing:
// headwise + share_kv: true inside a `repeat: {share: true}` (which shares the whole layer).
#include <cmath>

#include "nanoattn/attention.h"

namespace na {

namespace {

constexpr const char* kContext = "linformer";

const PluginInfo& linformer_info() {
  static const PluginInfo info = [] {
    PluginInfo i;
    i.name = "linformer";
    i.description =
        "Linformer (Wang et al. 2020): keys and values projected along the sequence by learned "
        "(k x max_len) E, F; O(T k) time and memory; bidirectional only";
    i.capabilities.bidirectional = true;
    i.capabilities.needs_fixed_length = true;
    i.options = {
        {"k", OptionType::Int, int64_t{64},
         "projection dim: keys and values are compressed from T to k rows"},
        {"sharing",
         OptionType::String,
         std::string("none"),
         "none: own E, F per head (H, k, max_len); headwise: one E, F (k, max_len) for every "
         "head of the layer (the paper's headwise sharing)",
         {"none", "headwise"}},
        {"share_kv", OptionType::Bool, false,
         "use E for the values too (F = E; the paper's key-value sharing)"},
    };
    i.test_variants = {
        {{"k", int64_t{4}}},
        {{"k", int64_t{4}}, {"share_kv", true}},
        {{"k", int64_t{4}}, {"sharing", std::string("headwise")}},
        {{"k", int64_t{3}}, {"sharing", std::string("headwise")}, {"share_kv", true}},
    };
    return i;
  }();
  return info;
}

class Linformer : public ProjectedAttention {
 public:
  explicit Linformer(const AttentionConfig& config) : ProjectedAttention(config) {
    NA_CHECK(!config.causal, "plugin 'linformer'",
             "Linformer cannot be causal: its projections E, F mix all positions of the "
             "sequence into each compressed key and value, so every output sees every token "
             "(including later ones). Use it with causal: false (an encoder), or pick a causal "
             "plugin (softmax, linear, fastformer, delta, ...)");
    const Options& o = config.options;
    k_ = o.get_int("k");
    headwise_ = o.get_string("sharing") == "headwise";
    share_kv_ = o.get_bool("share_kv");
    NA_CHECK(k_ >= 1, kContext, "option 'k' (projection dim) must be >= 1, got ", k_);
    NA_CHECK(o.get_string("sharing") == "none" || headwise_, kContext, "option 'sharing' is '",
             o.get_string("sharing"), "': choose none or headwise");
    NA_CHECK(config.max_len >= 1, kContext,
             "needs the longest sequence length (the model's max_len) to size its (k x max_len) "
             "projections, got max_len = ", config.max_len);
  }

 protected:
  // E (and F unless share_kv): (H, k, max_len) per head, or (k, max_len) shared by the heads.
  // N(0, 1/(max_len + k)): the variance of fairseq's Xavier init (gain 1/sqrt 2), so a
  // projected key has about the scale of a key when T = max_len.
  std::vector<ParamSpec> extra_parameters() const override {
    const float std = static_cast<float>(1.0 / std::sqrt(double(config_.max_len + k_)));
    Shape shape = headwise_ ? Shape{k_, config_.max_len} : Shape{config_.n_heads, k_, config_.max_len};
    std::vector<ParamSpec> specs{{"E", shape, Init::normal(std)}};
    if (!share_kv_) specs.push_back({"F", shape, Init::normal(std)});
    return specs;
  }

  // q, k, v: (B, H, T, d) -> (B, H, T, d), composed of nanoattn ops (autograd for free).
  Var attend(const Var& q, const Var& k, const Var& v, const ParamSet& p,
             const AttentionContext& ctx) override {
    const int64_t T = check(q, ctx);
    Var E = slice(p["E"], -1, 0, T), F = share_kv_ ? E : slice(p["F"], -1, 0, T);
    Var kp = compress(k, E), vp = compress(v, F);  // (B, H, k, d)
    Var scores = scale(matmul(q, kp, false, /*trans_b=*/true), score_scale(q));  // (B, H, T, k)
    return matmul(softmax(scores), vp);
  }

  // The oracle: the same function head by head, from 2-D projections and explicit transposes
  // (another path through the shapes than attend's permutes).
  Var attend_reference(const Var& q, const Var& k, const Var& v, const ParamSet& p,
                       const AttentionContext& ctx) override {
    const int64_t T = check(q, ctx), B = q.dim(0), H = q.dim(1), d = q.dim(3);
    std::vector<Var> heads;
    for (int64_t h = 0; h < H; ++h) {
      auto head = [&](const Var& x) { return reshape(slice(x, 1, h, h + 1), {B, T, d}); };
      auto proj = [&](const char* name) {  // (k, T)
        const Var& P = p[share_kv_ ? "E" : name];
        return headwise_ ? slice(P, -1, 0, T) : reshape(slice(slice(P, 0, h, h + 1), -1, 0, T), {k_, T});
      };
      // K'^T = K^T E^T: (B, d, k); scores = Q K'^T
      Var kpt = matmul(head(k), proj("E"), /*trans_a=*/true, /*trans_b=*/true);
      Var vpt = matmul(head(v), proj("F"), true, true);
      Var a = softmax(scale(matmul(head(q), kpt), score_scale(q)));  // (B, T, k)
      heads.push_back(reshape(matmul(a, vpt, false, /*trans_b=*/true), {B, 1, T, d}));
    }
    return concat(heads, 1);
  }

 private:
  int64_t check(const Var& q, const AttentionContext& ctx) const {
    NA_CHECK(ctx.key_padding_mask == nullptr, kContext,
             "key_padding_mask is not supported (capability key_padding_mask is off)");
    const int64_t T = q.dim(2);
    NA_CHECK(T <= config_.max_len, kContext, "sequence length T = ", T,
             " exceeds max_len = ", config_.max_len,
             ": E and F have max_len columns; build the model with a larger max_len");
    return T;
  }

  static float score_scale(const Var& q) {
    return static_cast<float>(1.0 / std::sqrt(static_cast<double>(q.dim(3))));
  }

  // x: (B, H, T, d), P: (H, k, T) or (k, T) -> P x per (b, h): (B, H, k, d)
  Var compress(const Var& x, const Var& P) const {
    const int64_t B = x.dim(0), H = x.dim(1), T = x.dim(2), d = x.dim(3);
    if (headwise_) {  // one (k, T) matrix times (T, B H d)
      Var xs = reshape(permute(x, {2, 0, 1, 3}), {T, B * H * d});
      return permute(reshape(matmul(P, xs), {k_, B, H, d}), {1, 2, 0, 3});
    }
    // per head: (H, k, T) times (H, T, B d)
    Var xs = reshape(permute(x, {1, 2, 0, 3}), {H, T, B * d});
    return permute(reshape(matmul(P, xs), {H, k_, B, d}), {2, 0, 1, 3});
  }

  int64_t k_ = 64;
  bool headwise_ = false, share_kv_ = false;
};

}  // namespace

}  // namespace na

NANOATTN_ATTENTION_PLUGIN(na::Linformer, na::linformer_info)
