// The `sparse` attention plugin: the factorised patterns of the Sparse Transformer (Child et
// al. 2019, "Generating Long Sequences with Sparse Transformers"), causal.
//
// With stride l (option `stride`) and, for `fixed`, c summary positions per block (`summary`),
// query t sees the keys s <= t of two sub-patterns:
//   strided:  A1 = {s : t - s < l}  (the previous l)    A2 = {s : (t - s) mod l == 0}
//   fixed:    A1 = {s : floor(s / l) == floor(t / l)}   A2 = {s : s mod l >= l - c}
// `heads: union` (the paper's "merged" head): every head attends to A1 u A2. `heads: split`
// (the paper's multi-head factorisation): even heads attend to A1, odd heads to A2 plus the
// query itself (so no row is empty). The fused kernel is the shared sparse-pattern kernel
// (plugins/sparse_common): O(T (l + T / l)) time and memory, O(T sqrt T) with l ~ sqrt T (the
// default). The reference is a dense T x T masked softmax of ordinary ops.
#include <cmath>
#include <string>

#include "dense_reference.h"
#include "nanoattn/attention.h"
#include "sparse_attention.h"
#include "sparse_pattern.h"

namespace na {

namespace {

constexpr const char* kContext = "sparse attention";

const PluginInfo& sparse_info() {
  static const PluginInfo info = [] {
    PluginInfo i;
    i.name = "sparse";
    i.description =
        "Sparse Transformer (Child et al. 2019): strided or fixed factorised causal patterns, "
        "O(T sqrt T)";
    i.capabilities.causal = true;
    i.options = {
        {"pattern", OptionType::String, std::string("strided"),
         "strided: the previous `stride` keys + every stride-th key back; fixed: the query's "
         "block of `stride` + the last `summary` keys of every earlier block",
         {"strided", "fixed"}},
        {"stride", OptionType::Int, int64_t{0},
         "stride / block length l; 0 = ceil(sqrt(max_len)) (O(T sqrt T))"},
        {"summary", OptionType::Int, int64_t{1},
         "fixed: summary keys c at the end of each block, 1 <= c <= stride"},
        {"heads", OptionType::String, std::string("union"),
         "union: every head attends to both sub-patterns; split: even heads the local one, odd "
         "heads the strided / summary one (needs n_heads >= 2)",
         {"union", "split"}},
    };
    i.test_variants = {
        {{"pattern", std::string("strided")}, {"stride", int64_t{2}}},
        {{"pattern", std::string("strided")}, {"stride", int64_t{3}}, {"heads", std::string("split")}},
        {{"pattern", std::string("fixed")}, {"stride", int64_t{3}}},
        {{"pattern", std::string("fixed")}, {"stride", int64_t{4}}, {"summary", int64_t{2}},
         {"heads", std::string("split")}},
        {{"pattern", std::string("fixed")}},  // the default stride, from max_len
    };
    return i;
  }();
  return info;
}

class SparseAttention : public ProjectedAttention {
 public:
  explicit SparseAttention(const AttentionConfig& config) : ProjectedAttention(config) {
    const Options& o = config.options;
    fixed_ = o.get_string("pattern") == "fixed";
    NA_CHECK(fixed_ || o.get_string("pattern") == "strided", kContext, "option 'pattern' is '",
             o.get_string("pattern"), "': choose strided or fixed");
    split_ = o.get_string("heads") == "split";
    NA_CHECK(split_ || o.get_string("heads") == "union", kContext, "option 'heads' is '",
             o.get_string("heads"), "': choose union or split");
    NA_CHECK(!split_ || config.n_heads >= 2, kContext,
             "heads: split gives even heads one sub-pattern and odd heads the other; it needs "
             "n_heads >= 2, got ", config.n_heads);
    NA_CHECK(config.causal, kContext,
             "the Sparse Transformer patterns are causal; this model is bidirectional (causal: false)");
    stride_ = o.get_int("stride");
    NA_CHECK(stride_ >= 0, kContext, "option 'stride' must be >= 1, or 0 for ceil(sqrt(max_len)); got ", stride_);
    if (stride_ == 0 && config.max_len > 0)
      stride_ = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(config.max_len))));
    summary_ = o.get_int("summary");
    NA_CHECK(summary_ >= 1 && (stride_ == 0 || summary_ <= stride_), kContext, "option 'summary' = ",
             summary_, " must be in [1, stride = ", stride_, "]");
    scale_ = static_cast<float>(1.0 / std::sqrt(static_cast<double>(key_dim())));
  }

 protected:
  Var attend(const Var& q, const Var& k, const Var& v, const ParamSet&,
             const AttentionContext& ctx) override {
    check_context(ctx);
    const int64_t T = q.dim(2), l = stride_for(T), c = std::min(summary_, l);
    const bool fixed = fixed_, split = split_;
    // Pattern 0: the union, or (split) A1; pattern 1 (split): A2 and the query itself.
    auto row = [=](int64_t p, int64_t t, int32_t* out) {
      RowWriter r{out};
      const bool a1 = p == 0, a2 = !split || p == 1;
      const int64_t block = (t / l) * l;  // fixed: the start of t's block
      const int64_t near = fixed ? block : std::max<int64_t>(0, t - l + 1);  // A1 = [near, t]
      if (a2) {  // the far part of A2, ascending, every key < near
        if (fixed) {
          for (int64_t b = 0; b < block; b += l)
            for (int64_t s = b + l - c; s < b + l; ++s) r.add(s);
        } else {
          for (int64_t s = t % l; s < near; s += l) r.add(s);
        }
      }
      if (a1) {
        for (int64_t s = near; s <= t; ++s) r.add(s);
      } else {  // split, pattern 1: A2 inside [near, t) (strided: none), then the query itself
        if (fixed)
          for (int64_t s = std::max(near, block + l - c); s < t; ++s) r.add(s);
        r.add(t);
      }
      return r.n;
    };
    SparsePattern pat = split_
        ? build_pattern(SparsePattern::Layout::PerHead, 2, T, T, row)
        : build_pattern(SparsePattern::Layout::Shared, 1, T, T, row);
    return sparse_attention(q, k, v, pat, scale_);
  }

  Var attend_reference(const Var& q, const Var& k, const Var& v, const ParamSet&,
                       const AttentionContext& ctx) override {
    check_context(ctx);
    const int64_t T = q.dim(2), H = config_.n_heads, l = stride_for(T), c = std::min(summary_, l);
    const int64_t heads = split_ ? H : 1;
    Tensor mask = Tensor::zeros({1, heads, T, T});  // nonzero = not attended
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t s = 0; s < T; ++s) {
          const bool a1 = fixed_ ? s / l == t / l : t - s < l;
          const bool a2 = fixed_ ? s % l >= l - c : (t - s) % l == 0;
          const bool seen = s <= t && (!split_ ? (a1 || a2) : h % 2 == 0 ? a1 : (a2 || s == t));
          mask[(h * T + t) * T + s] = seen ? 0.0f : 1.0f;
        }
    return masked_attention_reference(q, k, v, mask, Tensor(), scale_);
  }

 private:
  int64_t stride_for(int64_t T) const {
    if (stride_ > 0) return stride_;
    return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(T)))));
  }

  void check_context(const AttentionContext& ctx) const {
    NA_CHECK(ctx.key_padding_mask == nullptr, kContext,
             "key_padding_mask is not supported (capability key_padding_mask is off)");
  }

  bool fixed_ = false, split_ = false;
  int64_t stride_ = 0, summary_ = 1;
  float scale_ = 1.0f;
};

}  // namespace

}  // namespace na

NANOATTN_ATTENTION_PLUGIN(na::SparseAttention, na::sparse_info)
