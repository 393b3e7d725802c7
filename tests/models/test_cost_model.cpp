// The cost model (models/cost_model.h): parameter parts that add up to the model's count,
// training FLOPs per token against the formulas worked by hand, and the inference state.
#include <doctest/doctest.h>

#include <string>

#include "attention_cost.h"
#include "cost_model.h"
#include "plugin_loader.h"

using namespace na;

namespace {

const PluginRegistry& plugins() {
  static PluginRegistry reg;
  return reg;
}

// d_model 8, vocab 5, feed-forward width 16; n layers of `attention` (a model.attention map),
// optionally sharing one set of weights; the head tied to the token table unless `untied`.
std::string lm(const std::string& attention, int64_t n = 1, bool share = false, bool untied = false) {
  return "d_model: 8\nmax_len: 16\nattention: " + attention +
         "\nfeed_forward: {hidden: 16}\n"
         "blocks:\n"
         "  - token_embedding: {}\n"
         "  - positional: {kind: learned}\n"
         "  - repeat:\n"
         "      n: " + std::to_string(n) + "\n      share: " + (share ? "true" : "false") + "\n"
         "      blocks:\n"
         "        - residual: {norm_name: ln1, body: [attention: {}]}\n"
         "        - residual: {norm_name: ln2, body: [feed_forward: {}]}\n"
         "  - layernorm: {name: ln_f}\n"
         "  - lm_head: " + (untied ? "{}" : "{tied_to: tok}") + "\n";
}

ModelCost cost_of(const std::string& yaml, int64_t T = 6, int64_t context = 6) {
  Model m(YAML::Load(yaml), "test.yaml", 5, plugins(), 1);
  return model_cost(m, T, context);
}

int64_t params_of(const std::string& yaml) { return Model(YAML::Load(yaml), "test.yaml", 5, plugins(), 1).params().count(); }

int64_t sum_of_parts(const ParamBreakdown& p) {
  return p.embeddings + p.attention + p.feature_map + p.feed_forward + p.norms + p.head + p.other;
}

const char* kSoftmax = "{plugin: softmax, n_heads: 2}";
const char* kElu = "{plugin: linear, n_heads: 2}";
const char* kDelta = "{plugin: delta, n_heads: 2}";  // dpfp, nu 1 by default

// 6 x the matrix weights of one layer of the model above with a (V, C) = (5, 8) head, and
// q/k width dk per head: qkv (2 H dk + C, C), proj (C, C), fc (16, C), fc_out (C, 16), head.
double matmul_flops(int64_t dk = 4) { return 6.0 * ((2 * 2 * dk + 8) * 8 + 64 + 128 + 128 + 40); }

}  // namespace

TEST_CASE("cost model: the parameter parts add up to the model's count, for every kind of attention") {
  for (const char* att : {kSoftmax, kElu, kDelta, "{plugin: linear, n_heads: 2, options: {feature_map: favor, features: 3}}",
                          "{plugin: linear, n_heads: 2, options: {key_dim: 6}}", "{plugin: fastformer, n_heads: 2}"}) {
    for (bool share : {false, true}) {
      for (bool untied : {false, true}) {
        const std::string yaml = lm(att, 2, share, untied);
        INFO(yaml);
        const ModelCost c = cost_of(yaml);
        CHECK(c.params.total == params_of(yaml));
        CHECK(sum_of_parts(c.params) == c.params.total);
        CHECK(c.params.head == (untied ? 40 : 0));
      }
    }
  }
  // delta's beta projection (H, C) + (H) per layer is a feature-map parameter, not a projection
  const ParamBreakdown d = cost_of(lm(kDelta, 2)).params, s = cost_of(lm(kSoftmax, 2)).params;
  CHECK(d.feature_map == 2 * (2 * 8 + 2));
  CHECK(d.attention == s.attention);
  CHECK(s.feature_map == 0);
  // FAVOR's random matrix is not a parameter
  CHECK(cost_of(lm("{plugin: linear, n_heads: 2, options: {feature_map: favor, features: 3}}", 2)).params.total ==
        s.total);
}

TEST_CASE("cost model: training FLOPs per token are the formulas of attention_cost.h, worked by hand") {
  // V 5, C 8, H 2, head dim 4, hidden 16, T 6, one layer.
  const double mm = matmul_flops();
  CHECK(mm == 3312.0);
  // softmax, causal: 12 C (T + 1) / 2 = 12 * 8 * 3.5
  CHECK(cost_of(lm(kSoftmax)).train_flops_per_token == doctest::Approx(mm + 336.0));
  CHECK(cost_of(lm(kSoftmax)).attention_flops_per_token == doctest::Approx(336.0));
  // linear elu: F = 4, dv = 4: H (12 F dv + 9 F) = 2 (192 + 36)
  CHECK(cost_of(lm(kElu)).train_flops_per_token == doctest::Approx(mm + 456.0));
  // linear dpfp nu 2: F = 2 * 4 * 2 = 16: 2 (12 * 16 * 4 + 9 * 16)
  CHECK(cost_of(lm("{plugin: linear, n_heads: 2, options: {feature_map: dpfp, nu: 2}}")).train_flops_per_token ==
        doctest::Approx(mm + 1824.0));
  // linear with key_dim 6: qkv grows to (2 * 2 * 6 + 8, 8); F = 6: 2 (12 * 6 * 4 + 9 * 6)
  CHECK(cost_of(lm("{plugin: linear, n_heads: 2, options: {key_dim: 6}}")).train_flops_per_token ==
        doctest::Approx(matmul_flops(6) + 684.0));
  // linear favor m = 3: F = 3, plus the frozen projection 8 m dk per head: 2 (144 + 27 + 96)
  CHECK(cost_of(lm("{plugin: linear, n_heads: 2, options: {feature_map: favor, features: 3}}")).train_flops_per_token ==
        doctest::Approx(mm + 534.0));
  // delta dpfp nu 1: F = 8: H 18 F d + beta's 6 H C = 2 * 18 * 8 * 4 + 6 * 2 * 8
  CHECK(cost_of(lm(kDelta)).train_flops_per_token == doctest::Approx(mm + 1248.0));
  // An untied head multiplies by its own (V, C) matrix as a tied one does by the table.
  CHECK(cost_of(lm(kSoftmax, 1, false, true)).train_flops_per_token == doctest::Approx(mm + 336.0));
}

TEST_CASE("cost model: FLOPs count applications, parameters count weights (repeat with share: true)") {
  const ModelCost shared = cost_of(lm(kSoftmax, 3, true)), copies = cost_of(lm(kSoftmax, 3, false));
  CHECK(shared.train_flops_per_token == doctest::Approx(copies.train_flops_per_token));
  CHECK(shared.params.total < copies.params.total);
  // three layers: 3 x (the layer's products) + the head, 3 x the attention term
  CHECK(copies.train_flops_per_token == doctest::Approx(3 * (matmul_flops() - 240.0) + 240.0 + 3 * 336.0));
}

TEST_CASE("cost model: inference state is the KV cache for softmax, the measured fast weights for an RNN") {
  const ModelCost soft = cost_of(lm(kSoftmax, 2), 6, 10);
  CHECK(soft.state_kind == "kv_cache");
  CHECK(soft.state_context == 10);
  CHECK(soft.state_bytes == 2 * 2 * 10 * 8 * 4);  // 2 (K, V) x layers x T x d_model x float32

  // linear: layers x heads x (F dv + F) floats, F from feature_count; the same at any context
  for (int64_t nu : {0, 3}) {
    const std::string att = nu == 0 ? kElu : "{plugin: linear, n_heads: 2, options: {feature_map: dpfp, nu: 3}}";
    const int64_t F = nu == 0 ? 4 : 2 * 4 * nu;
    AttentionUse use;
    use.plugin = "linear";
    use.d_model = 8;
    use.n_heads = 2;
    if (nu) {
      use.options.set("feature_map", std::string("dpfp"));
      use.options.set("nu", int64_t{nu});
    }
    CHECK(feature_count(use) == F);
    for (int64_t context : {6, 1000}) {
      const ModelCost lin = cost_of(lm(att, 2), 6, context);
      CHECK(lin.state_kind == "fast_weights");
      CHECK(lin.state_bytes == 2 * 2 * (F * 4 + F) * 4);
    }
  }
  // delta: layers x heads x d x F floats
  CHECK(cost_of(lm(kDelta, 2)).state_bytes == 2 * 2 * 4 * 8 * 4);
}

TEST_CASE("attention cost: local attention sees its window; unknown plugins are flagged as a bound") {
  AttentionUse local;
  local.plugin = "local";
  local.d_model = 8;
  local.n_heads = 2;
  local.options.set("window", int64_t{3});
  // T = 6, causal: queries see 1, 2, 3, 3, 3, 3 keys: mean 2.5
  CHECK(attention_cost(local, 6).keys_per_query == doctest::Approx(2.5));
  CHECK(attention_cost(local, 6).flops_per_token == doctest::Approx(12.0 * 8 * 2.5));
  AttentionUse other = local;
  other.plugin = "reformer";
  CHECK(attention_cost(other, 6).keys_per_query == doctest::Approx(3.5));
  CHECK(!attention_cost(other, 6).approximation.empty());
  CHECK_THROWS_WITH_AS(feature_count(other), doctest::Contains("no feature map"), Error);
}
