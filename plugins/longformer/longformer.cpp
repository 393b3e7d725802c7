// The `longformer` attention plugin (Beltagy et al. 2020, "Longformer: The Long-Document
// Transformer"): a dilated sliding window plus global tokens.
//
// With window w, dilation d and the set G of global positions (option `global`), query t sees
//   - window keys s = t - i d (causal) or s = t +- i d (bidirectional), 0 <= i < w;
//   - every global key g in G (causal: g <= t);
//   - a global query t in G sees every key (causal: every s <= t).
// The fused kernel is the shared sparse-pattern kernel (plugins/sparse_common) over these row
// lists: O(T (2w - 1 + |G|) + |G| T) time and memory. The reference is a dense T x T masked
// softmax of ordinary ops with the mask built from the rule above.
#include <cmath>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "dense_reference.h"
#include "nanoattn/attention.h"
#include "sparse_attention.h"
#include "sparse_pattern.h"

namespace na {

namespace {

constexpr const char* kContext = "longformer attention";

const PluginInfo& longformer_info() {
  static const PluginInfo info = [] {
    PluginInfo i;
    i.name = "longformer";
    i.description =
        "Longformer (Beltagy et al. 2020): dilated sliding window plus global tokens, "
        "O(T (w + n_global)) time and memory";
    i.capabilities.causal = true;
    i.capabilities.bidirectional = true;
    i.options = {
        {"window", OptionType::Int, int64_t{64},
         "window keys on each side, the query itself included: s = t - i*dilation (causal) or "
         "t +- i*dilation (bidirectional), 0 <= i < window"},
        {"dilation", OptionType::Int, int64_t{1}, "gap between window keys (1 = contiguous)"},
        {"global", OptionType::String, std::string(""),
         "comma-separated global positions, e.g. \"0,64\": they see every key and every query "
         "sees them (causal: only keys <= the query); positions >= T are ignored"},
    };
    // Windows smaller than the test lengths (5, 12, 24); dilation; global tokens at the
    // start, in the middle and beyond the shortest test length.
    i.test_variants = {
        {{"window", int64_t{2}}, {"dilation", int64_t{2}}},
        {{"window", int64_t{2}}, {"global", std::string("1,3")}},
        {{"window", int64_t{3}}, {"dilation", int64_t{2}}, {"global", std::string("0,4,17")}},
    };
    return i;
  }();
  return info;
}

// "0, 4,17" -> {0, 4, 17} (sorted, without repeats).
std::vector<int64_t> parse_positions(const std::string& text) {
  std::set<int64_t> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    std::string item = text.substr(i, j - i);
    const size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
    item = a == std::string::npos ? "" : item.substr(a, b - a + 1);
    char* end = nullptr;
    const long long v = item.empty() ? -1 : std::strtoll(item.c_str(), &end, 10);
    NA_CHECK(!item.empty() && *end == '\0' && v >= 0, kContext, "option 'global' = \"", text,
             "\": '", item, "' is not a position >= 0; give comma-separated positions, e.g. \"0,64\"");
    out.insert(v);
    i = j + 1;
  }
  return {out.begin(), out.end()};
}

class LongformerAttention : public ProjectedAttention {
 public:
  explicit LongformerAttention(const AttentionConfig& config) : ProjectedAttention(config) {
    const Options& o = config.options;
    window_ = o.get_int("window");
    dilation_ = o.get_int("dilation");
    NA_CHECK(window_ >= 1, kContext, "option 'window' must be >= 1, got ", window_);
    NA_CHECK(dilation_ >= 1, kContext, "option 'dilation' must be >= 1, got ", dilation_);
    global_ = parse_positions(o.get_string("global"));
    scale_ = static_cast<float>(1.0 / std::sqrt(static_cast<double>(key_dim())));
  }

 protected:
  Var attend(const Var& q, const Var& k, const Var& v, const ParamSet&,
             const AttentionContext& ctx) override {
    check_context(ctx);
    const int64_t T = q.dim(2), w = window_, d = dilation_;
    const bool causal = config_.causal;
    // The global positions inside this sequence, and a per-position flag.
    int64_t ng = 0;
    while (ng < static_cast<int64_t>(global_.size()) && global_[ng] < T) ++ng;
    const int64_t* G = global_.data();
    char* is_global = tape().scratch<char>(T);
    std::fill(is_global, is_global + T, char{0});
    for (int64_t i = 0; i < ng; ++i) is_global[G[i]] = 1;

    SparsePattern pat = build_pattern(
        SparsePattern::Layout::Shared, 1, T, T, [=](int64_t, int64_t t, int32_t* out) {
          RowWriter r{out};
          const int64_t last = causal ? t : T - 1;  // the last key any query t may see
          if (is_global[t]) {
            for (int64_t s = 0; s <= last; ++s) r.add(s);
            return r.n;
          }
          // Merge the window (ascending) with the global keys (ascending), each key once.
          int64_t gi = 0;
          auto globals_before = [&](int64_t s) {
            for (; gi < ng && G[gi] < s; ++gi)
              if (G[gi] <= last) r.add(G[gi]);
          };
          const int64_t i_lo = std::min(w - 1, t / d);  // s = t - i d >= 0
          const int64_t i_hi = causal ? 0 : std::min(w - 1, (T - 1 - t) / d);
          for (int64_t i = -i_lo; i <= i_hi; ++i) {
            const int64_t s = t + i * d;
            globals_before(s);
            if (gi < ng && G[gi] == s) ++gi;
            r.add(s);
          }
          globals_before(T);
          return r.n;
        });
    return sparse_attention(q, k, v, pat, scale_);
  }

  Var attend_reference(const Var& q, const Var& k, const Var& v, const ParamSet&,
                       const AttentionContext& ctx) override {
    check_context(ctx);
    const int64_t T = q.dim(2);
    std::vector<bool> is_global(T, false);
    for (int64_t g : global_)
      if (g < T) is_global[g] = true;
    Tensor mask = Tensor::zeros({1, 1, T, T});  // nonzero = not attended
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = 0; s < T; ++s) {
        const int64_t gap = std::abs(t - s);
        const bool window = gap % dilation_ == 0 && gap / dilation_ < window_;
        const bool seen = !(config_.causal && s > t) && (is_global[t] || is_global[s] || window);
        mask[t * T + s] = seen ? 0.0f : 1.0f;
      }
    return masked_attention_reference(q, k, v, mask, Tensor(), scale_);
  }

 private:
  void check_context(const AttentionContext& ctx) const {
    NA_CHECK(ctx.key_padding_mask == nullptr, kContext,
             "key_padding_mask is not supported (capability key_padding_mask is off)");
  }

  int64_t window_ = 64, dilation_ = 1;
  std::vector<int64_t> global_;  // sorted, unique
  float scale_ = 1.0f;
};

}  // namespace

}  // namespace na

NANOATTN_ATTENTION_PLUGIN(na::LongformerAttention, na::longformer_info)
