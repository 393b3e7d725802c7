// Matched budgets (trainers/study/budget_match.h): a candidate re-balanced to a softmax base by
// solving for d_ff or d_model lands within tolerance at the nearest valid value; keys that
// cannot balance the budget are refused with the reason. Also the --vary syntax and cost.json.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "plugin_loader.h"
#include "study/budget_match.h"
#include "study/cost_json.h"
#include "study/variant.h"

using namespace na;

namespace {

const PluginRegistry& plugins() {
  static PluginRegistry reg;
  return reg;
}

// Two layers, d_model 32, 4 heads, feed-forward width from model.feed_forward (or the blocks' own).
YAML::Node lm(const std::string& attention, const std::string& ffn_defaults = "{hidden: 128}",
              const std::string& ffn_block = "{}") {
  return YAML::Load("d_model: 32\nmax_len: 64\nattention: " + attention + "\nfeed_forward: " + ffn_defaults +
                    "\nblocks:\n"
                    "  - token_embedding: {}\n"
                    "  - positional: {kind: learned}\n"
                    "  - repeat:\n"
                    "      n: 2\n"
                    "      blocks:\n"
                    "        - residual: {norm_name: ln1, body: [attention: {}]}\n"
                    "        - residual: {norm_name: ln2, body: [feed_forward: " + ffn_block + "]}\n"
                    "  - layernorm: {name: ln_f}\n"
                    "  - lm_head: {tied_to: tok}\n");
}

const char* kSoftmax = "{plugin: softmax, n_heads: 4}";
const char* kDelta3 = "{plugin: delta, n_heads: 4, options: {feature_map: dpfp, nu: 3}}";
const char* kLinear3 = "{plugin: linear, n_heads: 4, options: {feature_map: dpfp, nu: 3}}";

MatchSpec spec(const std::string& budget, const std::string& solve = "d_ff") {
  MatchSpec s;
  s.budget = budget;
  s.solve = solve;
  s.seq_len = 64;
  s.context = 64;
  s.where = "test.yaml";
  return s;
}

// The budget metric of `model` with `key` set to `value` (or nan if it does not build).
double metric_at(YAML::Node model, const std::string& key, int64_t value, const MatchSpec& s) {
  YAML::Node m = YAML::Clone(model);
  YAML::Node node = m;
  const size_t dot = key.find('.');
  if (dot == std::string::npos) m[key] = value;
  else m[key.substr(0, dot)][key.substr(dot + 1)] = value;
  try {
    Model built(m, "test.yaml", 20, plugins(), 1);
    return budget_metric(model_cost(built, s.seq_len, s.context), s.budget);
  } catch (const Error&) {
    return std::nan("");
  }
}

// The solved value is the nearest: the neighbouring values are no nearer to the target.
void check_nearest(const MatchResult& r, const MatchSpec& s, int64_t step) {
  const double here = std::abs(r.achieved - r.target);
  for (int64_t v : {r.value - step, r.value + step}) {
    const double m = metric_at(r.model, r.key, v, s);
    INFO(r.key, " = ", v, " gives ", m, "; solved ", r.value, " gives ", r.achieved, ", target ", r.target);
    CHECK(std::abs(m - r.target) >= here);
  }
}

}  // namespace

TEST_CASE("match: a delta-rule dpfp nu=3 candidate re-balanced on d_ff to a softmax base's parameters") {
  const MatchSpec s = spec("params");
  const MatchResult r = match_budget(lm(kSoftmax), lm(kDelta3), 20, plugins(), s);
  CHECK(r.key == "feed_forward.hidden");
  CHECK(r.within_tolerance);
  CHECK(std::abs(r.ratio - 1.0) <= 0.02);
  CHECK(r.value < 128);  // beta's parameters are paid for by a narrower feed-forward
  CHECK(r.model["feed_forward"]["hidden"].as<int64_t>() == r.value);
  CHECK(r.base.params.total == static_cast<int64_t>(r.target));
  CHECK(r.cost.params.total == static_cast<int64_t>(r.achieved));
  CHECK(r.cost.params.feature_map == 2 * (4 * 32 + 4));
  check_nearest(r, s, 1);
}

TEST_CASE("match: a linear dpfp nu=3 candidate re-balanced on d_ff to a softmax base's training FLOPs") {
  const MatchSpec s = spec("flops");
  const MatchResult r = match_budget(lm(kSoftmax), lm(kLinear3), 20, plugins(), s);
  CHECK(r.within_tolerance);
  CHECK(r.value < 128);  // 48 features per head cost more than softmax at T = 64
  CHECK(r.achieved == doctest::Approx(r.cost.train_flops_per_token));
  check_nearest(r, s, 1);
}

TEST_CASE("match: solving d_model tries only values n_heads divides") {
  const MatchSpec s = spec("params", "d_model");
  // a 4x wider feed-forward: the candidate must shrink well below the base's d_model 32
  const MatchResult r = match_budget(lm(kSoftmax), lm(kDelta3, "{hidden: 512}"), 20, plugins(), s);
  CHECK(r.key == "d_model");
  CHECK(r.value % 4 == 0);
  CHECK(r.value < 28);
  for (int64_t off : {1, 2, 3}) CHECK(std::isnan(metric_at(r.model, "d_model", r.value + off, s)));
  check_nearest(r, s, 4);
}

TEST_CASE("match: an exact tolerance that no integer reaches is reported, with the closest value") {
  MatchSpec s = spec("params");
  s.tolerance = 0;
  const MatchResult r = match_budget(lm(kSoftmax), lm(kDelta3), 20, plugins(), s);
  // beta adds 2 (4 * 32 + 4) = 264; a unit of d_ff 2 (2 * 32 + 1) = 130: no whole number matches
  CHECK_FALSE(r.within_tolerance);
  CHECK(r.achieved != r.target);
  check_nearest(r, s, 1);
}

TEST_CASE("match: keys that cannot balance the budget are refused with the reason") {
  // every feed_forward block sets its own mult, which wins over model.feed_forward.hidden
  CHECK_THROWS_WITH_AS(match_budget(lm(kSoftmax, "{}", "{mult: 4}"), lm(kDelta3, "{}", "{mult: 4}"), 20, plugins(),
                                    spec("params")),
                       doctest::Contains("every feed_forward block sets its own mult or hidden"), Error);
  CHECK_THROWS_WITH_AS(match_budget(lm(kSoftmax, "{mult: 4}"), lm(kDelta3, "{mult: 4}"), 20, plugins(),
                                    spec("params")),
                       doctest::Contains("replace mult: M by hidden: M x d_model"), Error);
  // the feed-forward width does not change the inference state
  CHECK_THROWS_WITH_AS(match_budget(lm(kSoftmax), lm(kDelta3), 20, plugins(), spec("state")),
                       doctest::Contains("does not change the candidate's state"), Error);
  CHECK_THROWS_WITH_AS(match_budget(lm(kSoftmax), lm(kDelta3), 20, plugins(), spec("bytes")),
                       doctest::Contains("valid budgets: params, flops, state"), Error);
}

TEST_CASE("match: the state budget solved on d_model") {
  MatchSpec s = spec("state", "d_model");
  s.tolerance = 0.2;
  const MatchResult r = match_budget(lm(kSoftmax), lm(kLinear3), 20, plugins(), s);
  CHECK(r.within_tolerance);
  CHECK(r.base.state_kind == "kv_cache");
  CHECK(r.cost.state_kind == "fast_weights");
  CHECK(r.base.state_bytes == 2 * 2 * 64 * 32 * 4);
  check_nearest(r, s, 4);
}

TEST_CASE("--vary text: a name, assignments split at ';' outside brackets, errors quote the text") {
  const Variant v = parse_variant("dpfp3:model.attention={plugin: linear, options: {a: 1; b: 2}};train.seq_len=32",
                                  "v1");
  CHECK(v.name == "dpfp3");
  CHECK(v.assignments == std::vector<std::string>{"model.attention={plugin: linear, options: {a: 1; b: 2}}",
                                                  "train.seq_len=32"});
  const Variant u = parse_variant("model.attention.plugin=linear", "v2");
  CHECK(u.name == "v2");
  CHECK(u.assignments.size() == 1);
  CHECK_THROWS_WITH_AS(parse_variant("oops", "v1"), doctest::Contains("--vary 'oops'"), Error);
  CHECK_THROWS_WITH_AS(parse_variant("x:", "v1"), doctest::Contains("no assignment"), Error);
  CHECK_THROWS_WITH_AS(parse_variant("a b:model.x=1", "v1"), doctest::Contains("name 'a b'"), Error);
}

TEST_CASE("cost_json: the keys a study's cost.json holds") {
  const MatchResult r = match_budget(lm(kSoftmax), lm(kDelta3), 20, plugins(), spec("params"));
  const nlohmann::json j = cost_json(r.cost);
  for (const char* k : {"params", "train_flops_per_token", "state_bytes", "state_kind", "state_context"})
    CHECK(j.contains(k));
  int64_t parts = 0;
  for (const char* k : {"embeddings", "attention", "feature_map", "feed_forward", "norms", "head", "other"})
    parts += j["params"][k].get<int64_t>();
  CHECK(parts == j["params"]["total"].get<int64_t>());
  CHECK(j["params"]["total"].get<int64_t>() == r.cost.params.total);
  CHECK(j["state_kind"] == "fast_weights");
  CHECK(j["state_context"] == 64);
}
