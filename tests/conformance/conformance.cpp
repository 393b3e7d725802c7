#include "conformance.h"

#include <cmath>

namespace na::testing {

const PluginRegistry& registry() {
  static const PluginRegistry reg;
  return reg;
}

std::vector<PluginCase> plugin_cases() {
  std::vector<PluginCase> cases;
  for (const LoadedPlugin& p : registry().plugins()) {
    auto variants = p.info->test_variants;
    if (variants.empty()) variants.push_back({});
    for (const auto& v : variants)
      for (bool causal : {true, false}) {
        const Capabilities& caps = p.info->capabilities;
        if ((causal && !caps.causal) || (!causal && !caps.bidirectional)) continue;
        std::string label = p.name + " {";
        for (const auto& [k, val] : v) label += (label.back() == '{' ? "" : ", ") + k + "=" + option_value_str(val);
        label += causal ? "} causal" : "} bidirectional";
        cases.push_back({&p, v, causal, label});
      }
  }
  return cases;
}

Instance instantiate(const PluginCase& c, int64_t d_model, int64_t n_heads, int64_t max_len, uint64_t seed) {
  Instance in;
  in.config.d_model = d_model;
  in.config.n_heads = n_heads;
  in.config.max_len = max_len;
  in.config.causal = c.causal;
  in.config.seed = seed;
  for (const OptionSpec& s : c.plugin->info->options) in.config.options.set(s.name, s.default_value);
  for (const auto& [k, v] : c.variant) {
    NA_CHECK(in.config.options.has(k), c.label, "test variant sets undeclared option '", k, "'");
    in.config.options.set(k, v);
  }
  in.attention = registry().create(c.plugin->name, in.config);
  in.specs = in.attention->parameters();
  for (size_t i = 0; i < in.specs.size(); ++i) {
    const ParamSpec& s = in.specs[i];
    Tensor t = Tensor::empty(s.shape);
    uint64_t key = Rng::mix(seed, 1000 + i);
    switch (s.init.kind) {
      case Init::Normal: fill_normal(t, key, s.init.a, 0.4f); break;
      case Init::Uniform: fill_uniform(t, key, s.init.a, s.init.b); break;
      case Init::Zeros: fill_uniform(t, key, -0.2f, 0.2f); break;
      case Init::Ones: fill_uniform(t, key, 0.8f, 1.2f); break;
    }
    in.param_values.push_back(t);
  }
  return in;
}

ParamSet param_set(const std::vector<ParamSpec>& specs, const std::vector<Var>& vars, size_t first) {
  ParamSet p;
  for (size_t i = 0; i < specs.size(); ++i) p.add(specs[i].name, vars[first + i]);
  return p;
}

}  // namespace na::testing
