#include "attention_cost.h"

#include <algorithm>

namespace na {

namespace {

int64_t int_option(const AttentionUse& a, const char* name, int64_t fallback) {
  return a.options.has(name) ? a.options.get_int(name) : fallback;
}

std::string string_option(const AttentionUse& a, const char* name, const std::string& fallback) {
  return a.options.has(name) ? a.options.get_string(name) : fallback;
}

// The q/k width per head: linear may widen it (key_dim, 0 = C / H); every other plugin uses C / H.
int64_t key_width(const AttentionUse& a) {
  const int64_t head = a.d_model / a.n_heads;
  if (a.plugin != "linear") return head;
  const int64_t kd = int_option(a, "key_dim", 0);
  return kd > 0 ? kd : head;
}

// Mean over the T queries of the keys each sees: a causal band of `window` keys spaced by
// `dilation` (query t sees min(window, t / dilation + 1)), or bidirectionally up to 2 window - 1.
double mean_keys(int64_t T, int64_t window, int64_t dilation, bool causal) {
  if (!causal) return static_cast<double>(std::min(2 * window - 1, T));
  double sum = 0;
  for (int64_t t = 0; t < T; ++t) sum += static_cast<double>(std::min(window, t / dilation + 1));
  return sum / static_cast<double>(T);
}

// Training FLOPs of FAVOR's projection W x for q and k (W: m x dk, frozen): 2 x 2 m dk x 2.
double favor_flops(const AttentionUse& a, int64_t dk) {
  if (string_option(a, "feature_map", "") != "favor") return 0;
  return 8.0 * static_cast<double>(feature_count(a)) * static_cast<double>(dk);
}

}  // namespace

int64_t feature_count(const AttentionUse& a) {
  NA_CHECK(a.plugin == "linear" || a.plugin == "delta", a.path,
           "feature_count: plugin '", a.plugin, "' has no feature map (only linear and delta do)");
  const int64_t dk = key_width(a);
  const std::string map = string_option(a, "feature_map", a.plugin == "linear" ? "elu" : "dpfp");
  if (map == "dpfp") return 2 * dk * int_option(a, "nu", 1);
  if (map == "favor") {
    const int64_t m = int_option(a, "features", 0);
    return m > 0 ? m : dk;
  }
  return dk;  // elu, relu
}

AttentionCost attention_cost(const AttentionUse& a, int64_t T) {
  AttentionCost c;
  c.heads = a.n_heads;
  c.key_dim = key_width(a);
  c.value_dim = a.d_model / a.n_heads;
  const double H = static_cast<double>(c.heads), dk = static_cast<double>(c.key_dim),
               dv = static_cast<double>(c.value_dim), C = static_cast<double>(a.d_model);
  if (a.plugin == "linear" || a.plugin == "delta") {
    c.kind = a.plugin;
    c.features = feature_count(a);
    const double F = static_cast<double>(c.features);
    if (a.plugin == "linear") {
      const bool normalize = !a.options.has("normalize") || a.options.get_bool("normalize");
      c.flops_per_token = H * (12.0 * F * dv + (normalize ? 9.0 * F : 0.0) + favor_flops(a, c.key_dim));
    } else {
      c.flops_per_token = H * (18.0 * F * dv + favor_flops(a, c.key_dim)) + 6.0 * H * C;
    }
    return c;
  }
  if (a.plugin == "fastformer") {
    c.kind = "fastformer";
    c.flops_per_token = 6.0 * 2.0 * C;  // query_att, key_att: (H, d) each, one product per token
    return c;
  }
  if (a.plugin == "linformer") {
    c.kind = "linformer";
    c.keys_per_query = static_cast<double>(int_option(a, "k", 64));
    c.flops_per_token = 2.0 * 6.0 * H * (dk + dv) * c.keys_per_query;  // attention + the E, F projections
    return c;
  }
  c.kind = "softmax";
  if (a.plugin == "local" || a.plugin == "longformer") {
    c.keys_per_query = mean_keys(T, int_option(a, "window", 64), std::max<int64_t>(1, int_option(a, "dilation", 1)),
                                 a.causal);
    if (a.plugin == "longformer" && !string_option(a, "global", "").empty())
      c.approximation = cat(a.path, " (longformer): global tokens are not counted");
  } else {
    c.keys_per_query = a.causal ? static_cast<double>(T + 1) / 2.0 : static_cast<double>(T);
    if (a.plugin != "softmax")
      c.approximation = cat(a.path, " (", a.plugin, "): priced as full softmax attention, an upper bound");
  }
  c.flops_per_token = 6.0 * H * (dk + dv) * c.keys_per_query;
  return c;
}

}  // namespace na
