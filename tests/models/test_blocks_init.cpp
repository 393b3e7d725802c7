// GPT-2 initialisation (model key `init`, models/init_scheme.h) on the S model of
// ../shared/reference/README.md, as ../shared/reference/charlm.py does it: biases 0, matrices
// N(0, 0.02), residual output projections (attention proj.weight, feed_forward fc_out.weight)
// N(0, 0.02 / sqrt(2 n_layer)).
//
// Tolerance: each matrix group's empirical std (root mean square: the mean is 0) within 3% of
// its target. The smallest group, tok.weight, has 8,320 values: the sampling error of its std
// is 1 / sqrt(2 * 8320) = 0.8%, so 3% is ~4 standard errors, while a missed residual scale
// (sqrt(8) = 2.8x) or a wrong std is far outside.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>

#include "init_scheme.h"
#include "model.h"
#include "plugin_loader.h"

using namespace na;

namespace {

const PluginRegistry& plugins() {
  static PluginRegistry reg;
  return reg;
}

// The S model (vocab 65, d_model 128, 4 layers, 4 heads, max_len 256), `extra` added at the top.
std::string s_model(const std::string& extra = "", const std::string& repeat = "n: 4") {
  return extra + R"(
d_model: 128
max_len: 256
blocks:
  - token_embedding: {name: tok}
  - positional: {kind: learned, name: pos}
  - repeat:
      name: blocks
      )" + repeat + R"(
      blocks:
        - residual: {norm: layernorm, norm_name: ln1, body: [{attention: {name: attn, plugin: softmax, n_heads: 4}}]}
        - residual: {norm: layernorm, norm_name: ln2, body: [{feed_forward: {mult: 4, name: ""}}]}
  - layernorm: {name: ln_f}
  - lm_head: {tied_to: tok.weight}
)";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Matrices pooled by their name's last two parts ("attn.proj.weight" -> "proj.weight"); the
// root mean square of each pool.
std::map<std::string, double> matrix_stds(Model& m) {
  std::map<std::string, std::pair<double, int64_t>> sums;
  for (Parameter* p : m.params().all()) {
    if (p->value().shape().rank() < 2) continue;
    std::string key = p->name();
    for (const char* s : {"proj.weight", "fc_out.weight", "fc.weight", "qkv.weight"})
      if (ends_with(key, std::string(".") + s)) key = s;
    auto& [sq, n] = sums[key];
    for (int64_t i = 0; i < p->value().numel(); ++i) sq += static_cast<double>(p->value()[i]) * p->value()[i];
    n += p->value().numel();
  }
  std::map<std::string, double> out;
  for (const auto& [k, v] : sums) out[k] = std::sqrt(v.first / static_cast<double>(v.second));
  return out;
}

void check_stds(Model& m, double std, double residual_std) {
  const std::map<std::string, double> got = matrix_stds(m);
  const std::map<std::string, double> want = {{"tok.weight", std},        {"pos.weight", std},
                                              {"qkv.weight", std},        {"fc.weight", std},
                                              {"proj.weight", residual_std}, {"fc_out.weight", residual_std}};
  CHECK(got.size() == want.size());
  for (const auto& [group, target] : want) {
    INFO(group, ": std ", (got.count(group) ? got.at(group) : -1.0), ", target ", target);
    REQUIRE(got.count(group));
    CHECK(std::fabs(got.at(group) / target - 1) <= 0.03);
  }
  // Biases zero, norm scales one, as declared.
  for (Parameter* p : m.params().all()) {
    if (p->value().shape().rank() >= 2) continue;
    const float want_value = ends_with(p->name(), ".bias") ? 0.0f : 1.0f;
    bool ok = true;
    for (int64_t i = 0; i < p->value().numel(); ++i) ok = ok && p->value()[i] == want_value;
    INFO(p->name());
    CHECK(ok);
  }
}

std::string error_of(const std::string& yaml) {
  try {
    Model m(YAML::Load(yaml), "exp.yaml", 65, plugins(), 1);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("init (default): GPT-2 stds on the S model, residual outputs scaled by 1/sqrt(2 * 4)") {
  Model m(YAML::Load(s_model()), "exp.yaml", 65, plugins(), 1);
  CHECK(m.params().is_residual_output(m.params().get("blocks.2.fc_out.weight")));
  CHECK(m.params().is_residual_output(m.params().get("blocks.2.attn.proj.weight")));  // see attention.cpp
  CHECK_FALSE(m.params().is_residual_output(m.params().get("blocks.2.fc.weight")));
  check_stds(m, 0.02, 0.02 / std::sqrt(8.0));
}

TEST_CASE("init: {std, residual_scale} change the matrices' std and the residual scaling") {
  Model a(YAML::Load(s_model("init: {std: 0.05}")), "exp.yaml", 65, plugins(), 2);
  check_stds(a, 0.05, 0.05 / std::sqrt(8.0));
  Model b(YAML::Load(s_model("init: {std: 0.01, residual_scale: false}")), "exp.yaml", 65, plugins(), 2);
  check_stds(b, 0.01, 0.01);
  // repeat with share: true builds one attention block: n_layer = 1.
  Model c(YAML::Load(s_model("", "n: 4\n      share: true")), "exp.yaml", 65, plugins(), 2);
  check_stds(c, 0.02, 0.02 / std::sqrt(2.0));
}

TEST_CASE("init: a rescaled parameter holds exactly what a draw with that std from its own key gives") {
  Model m(YAML::Load(s_model()), "exp.yaml", 65, plugins(), 9);
  for (const char* name : {"blocks.1.fc_out.weight", "blocks.1.fc.weight"}) {
    const Parameter& p = m.params().get(name);
    const Tensor want = Tensor::empty(p.value().shape());
    apply_init(m.params().init(p), want, Rng::mix(9, stable_hash(name)));
    CHECK(want.to_vector() == p.value().to_vector());
  }
  CHECK(m.params().init(m.params().get("blocks.1.fc_out.weight")).b == doctest::Approx(0.02 / std::sqrt(8.0)));
  CHECK(m.params().init(m.params().get("blocks.1.fc.weight")).b == 0.02f);
}

TEST_CASE("init: errors name the position and the valid keys") {
  CHECK(error_of(s_model("init: {stdev: 0.1}")) ==
        "exp.yaml:1:8: model: init has no key 'stdev'; valid keys: std, residual_scale");
  CHECK(error_of(s_model("init: {std: -0.5}")) == "exp.yaml:1:13: model: init.std must be a number > 0, got '-0.5'");
  CHECK(error_of(s_model("init: {std: wide}")) == "exp.yaml:1:13: model: init.std must be a number > 0, got 'wide'");
  CHECK(error_of(s_model("init: {residual_scale: maybe}")) ==
        "exp.yaml:1:24: model: init.residual_scale must be true or false, got 'maybe'");
  CHECK(error_of(s_model("init: 0.02")) ==
        "exp.yaml:1:7: model: 'init' must be a map, e.g. init: {std: 0.02, residual_scale: true}");
}
