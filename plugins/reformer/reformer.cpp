// The `reformer` attention plugin: LSH attention (Kitaev et al. 2020, "Reformer: The Efficient
// Transformer") with shared query/key projections.
//
//   q = x W_qk,  keys k_j = q_j / |q_j|,  score(i, j) = q_i . k_j / sqrt(d)
//   each of n_hashes rounds: bucket(t) = argmax [q_t R_r, -q_t R_r]   (random rotations R_r,
//     drawn once from the plugin's seed), buckets cut into chunks of bucket_size tokens in
//     position order; query i sees the tokens of its bucket in its chunk and the previous
//     chunk (causal: at or before i); itself only with the fixed score -1e5, i.e. only when
//     nothing else is there.
//   out_i = sum_r w_r o_i^r, o_i^r = softmax attention over round r's set, w = softmax_r(lse_i^r)
//     (the logsumexp-weighted average of the paper). One softmax over the concatenation of the
//     rounds' lists is the same function: that is what the fused kernel computes.
// Gradients flow through the attention weights, not through the hashing (piecewise constant).
// Time and memory O(T n_hashes bucket_size) for the attention, plus O(T d n_buckets / 2) per
// round for the hashing. The reference builds the same buckets and chunks as dense T x T masks
// and combines per-round dense masked softmaxes of ordinary ops with the lse weights.
#include <cmath>
#include <memory>

#include "dense_reference.h"
#include "lsh.h"
#include "nanoattn/attention.h"
#include "nanoattn/rng.h"
#include "sparse_attention.h"
#include "sparse_row.h"

namespace na {

namespace {

constexpr const char* kContext = "reformer attention";
constexpr uint64_t kRotationTag = 0x6c7368726f74ull;  // "lshrot": the rotations' key stream

const PluginInfo& reformer_info() {
  static const PluginInfo info = [] {
    PluginInfo i;
    i.name = "reformer";
    i.description =
        "Reformer LSH attention (Kitaev et al. 2020): shared QK, angular LSH with n_hashes "
        "rounds, chunked attention within buckets, O(T n_hashes bucket_size)";
    i.capabilities.causal = true;
    i.capabilities.bidirectional = true;
    i.options = {
        {"n_hashes", OptionType::Int, int64_t{2}, "hash rounds, combined by their logsumexp"},
        {"bucket_size", OptionType::Int, int64_t{32},
         "chunk length: a query sees its bucket's tokens in its chunk and the previous one"},
        {"n_buckets", OptionType::Int, int64_t{0},
         "buckets per round (even, >= 2); 0 = max_len / bucket_size rounded up to even"},
    };
    // Few buckets and short chunks at the test lengths (5, 12, 24), so buckets hold several
    // tokens and get cut into chunks; one and two rounds.
    i.test_variants = {
        {{"n_hashes", int64_t{1}}, {"bucket_size", int64_t{4}}, {"n_buckets", int64_t{2}}},
        {{"n_hashes", int64_t{2}}, {"bucket_size", int64_t{3}}, {"n_buckets", int64_t{4}}},
        {{"n_hashes", int64_t{2}}, {"bucket_size", int64_t{2}}},  // n_buckets from max_len
    };
    return i;
  }();
  return info;
}

class ReformerAttention : public IAttention {
 public:
  explicit ReformerAttention(const AttentionConfig& config) : config_(config) {
    NA_CHECK(config.d_model > 0 && config.n_heads > 0 && config.d_model % config.n_heads == 0,
             kContext, "d_model ", config.d_model, " must be a positive multiple of n_heads ",
             config.n_heads);
    const Options& o = config.options;
    n_hashes_ = o.get_int("n_hashes");
    chunk_ = o.get_int("bucket_size");
    n_buckets_ = o.get_int("n_buckets");
    NA_CHECK(n_hashes_ >= 1, kContext, "option 'n_hashes' must be >= 1, got ", n_hashes_);
    NA_CHECK(chunk_ >= 1, kContext, "option 'bucket_size' must be >= 1, got ", chunk_);
    if (n_buckets_ == 0) {
      NA_CHECK(config.max_len > 0, kContext,
               "option 'n_buckets' = 0 derives it from max_len, which is not set; give n_buckets");
      n_buckets_ = std::max<int64_t>(2, (config.max_len + chunk_ - 1) / chunk_);
      n_buckets_ += n_buckets_ % 2;
    }
    NA_CHECK(n_buckets_ >= 2 && n_buckets_ % 2 == 0, kContext,
             "option 'n_buckets' must be even and >= 2 (or 0 = from max_len), got ", n_buckets_);
    d_ = config.d_model / config.n_heads;
    rotations_ = lsh::draw_rotations(config.n_heads, n_hashes_, d_, n_buckets_,
                                     Rng::mix(config.seed, kRotationTag));
  }

  // Shared QK: one projection for queries and keys, one for values. Layout of qv rows: [qk | v].
  std::vector<ParamSpec> parameters() const override {
    const int64_t C = config_.d_model;
    return {
        {"qv.weight", {2 * C, C}, Init::normal(0.02f)},
        {"qv.bias", {2 * C}, Init::zeros()},
        {"proj.weight", {C, C}, Init::normal(0.02f)},
        {"proj.bias", {C}, Init::zeros()},
    };
  }

  Var forward(const Var& x, const ParamSet& p, const AttentionContext& ctx) override {
    check_context(ctx);
    return project(x, p, [&](const Var& q, const Var& v) {
      const int64_t B = q.dim(0), H = q.dim(1), T = q.dim(2);
      int32_t* buckets = tape().scratch<int32_t>(std::max<int64_t>(1, B * H * n_hashes_ * T));
      lsh::buckets(q.value(), rotations_, n_hashes_, n_buckets_, buckets);
      SparsePattern pat = lsh::pattern(buckets, B, H, n_hashes_, T, n_buckets_, chunk_, config_.causal);
      return sparse_attention(q, keys(q), v, pat, score_scale());
    });
  }

  Var reference(const Var& x, const ParamSet& p, const AttentionContext& ctx) override {
    check_context(ctx);
    return project(x, p, [&](const Var& q, const Var& v) { return dense(q, v); });
  }

 private:
  // k = q / |q| (rmsnorm gives norm sqrt(d), folded into the score scale 1/d).
  static Var keys(const Var& q) { return rmsnorm(q, Var()); }
  float score_scale() const { return static_cast<float>(1.0 / static_cast<double>(d_)); }

  // q, v: (B, H, T, d) -> (B, H, T, d): the same buckets and chunks as dense masks, one
  // dense masked softmax per round, combined with the weights softmax_r(lse_r).
  Var dense(const Var& q, const Var& v) const {
    const int64_t B = q.dim(0), H = q.dim(1), T = q.dim(2), R = n_hashes_, m = chunk_;
    std::vector<int32_t> bk(B * H * R * T);
    lsh::buckets(q.value(), rotations_, R, n_buckets_, bk.data());
    Tensor self = Tensor::zeros({1, 1, T, T});
    for (int64_t t = 0; t < T; ++t) self[t * T + t] = 1.0f;
    Var s = scale(matmul(q, keys(q), false, true), score_scale());  // (B, H, T, T)
    s = masked_fill(s, self, sparse::kFixedScore);
    std::vector<Var> outs, lses;
    for (int64_t r = 0; r < R; ++r) {
      Tensor mask = Tensor::zeros({B, H, T, T});  // nonzero = not attended
      for (int64_t bh = 0; bh < B * H; ++bh) {
        const int32_t* b = bk.data() + (bh * R + r) * T;
        std::vector<int64_t> rank(T, 0), size(n_buckets_, 0);
        for (int64_t t = 0; t < T; ++t) rank[t] = size[b[t]]++;  // earlier tokens of its bucket
        for (int64_t i = 0; i < T; ++i)
          for (int64_t j = 0; j < T; ++j) {
            const int64_t c = rank[i] / m;
            const bool seen = b[i] == b[j] && rank[j] >= (c - 1) * m && rank[j] < (c + 1) * m &&
                              !(config_.causal && j > i);
            mask[(bh * T + i) * T + j] = seen ? 0.0f : 1.0f;
          }
      }
      Var sr = masked_fill(s, mask, -1e30f);
      Var mx = max(sr, -1, true);
      lses.push_back(add(mx, log(sum(exp(sub(sr, mx)), -1, true))));  // (B, H, T, 1)
      outs.push_back(matmul(softmax(sr), v));
    }
    if (R == 1) return outs[0];
    Var w = softmax(concat(lses, -1));  // (B, H, T, R)
    Var out = mul(slice(w, -1, 0, 1), outs[0]);
    for (int64_t r = 1; r < R; ++r) out = add(out, mul(slice(w, -1, r, r + 1), outs[r]));
    return out;
  }

  // x: (B, T, C) -> (B, T, C) around attend(q, v) on (B, H, T, d) heads.
  template <class Attend>
  Var project(const Var& x, const ParamSet& p, Attend&& attend) const {
    const int64_t C = config_.d_model, H = config_.n_heads;
    NA_CHECK(x.rank() == 3 && x.dim(2) == C, kContext, "input ", x.shape(), " must be (B, T, ", C, ")");
    const int64_t B = x.dim(0), T = x.dim(1);
    Var qv = linear(x, p["qv.weight"], p["qv.bias"]);  // (B, T, 2C)
    auto heads = [&](int64_t start) { return split_heads(qv, start, H, d_); };  // (B, H, T, d)
    Var y = attend(heads(0), heads(C));  // (B, H, T, d)
    y = reshape(permute(y, {0, 2, 1, 3}), {B, T, C});
    return linear(y, p["proj.weight"], p["proj.bias"]);
  }

  void check_context(const AttentionContext& ctx) const {
    NA_CHECK(ctx.key_padding_mask == nullptr, kContext,
             "key_padding_mask is not supported (capability key_padding_mask is off)");
  }

  AttentionConfig config_;
  int64_t n_hashes_ = 2, chunk_ = 32, n_buckets_ = 0, d_ = 0;
  Tensor rotations_;  // (H, d, n_hashes * n_buckets / 2), fixed at construction
};

}  // namespace

}  // namespace na

NANOATTN_ATTENTION_PLUGIN(na::ReformerAttention, na::reformer_info)
