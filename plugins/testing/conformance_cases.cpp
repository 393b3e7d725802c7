// Which cases the conformance checks run, and the instances they run on.
#include <set>

#include "nanoattn/conformance.h"

namespace na::testing {

std::vector<ConformanceCase> conformance_cases(const PluginInfo& info, const std::vector<Variant>& given) {
  std::vector<Variant> variants = given.empty() ? info.test_variants : given;
  if (variants.empty()) variants.push_back({});
  std::vector<ConformanceCase> cases;
  for (const Variant& v : variants)
    for (bool causal : {true, false}) {
      if ((causal && !info.capabilities.causal) || (!causal && !info.capabilities.bidirectional)) continue;
      std::string label = "{";
      for (const auto& [k, val] : v) label += (label.size() > 1 ? ", " : "") + k + "=" + option_value_str(val);
      label += causal ? "} causal" : "} bidirectional";
      cases.push_back({v, causal, label});
    }
  return cases;
}

Instance instantiate(const PluginUnderTest& p, const ConformanceCase& c, int64_t d_model, int64_t n_heads,
                     int64_t max_len, uint64_t seed) {
  Instance in;
  in.config.d_model = d_model;
  in.config.n_heads = n_heads;
  in.config.max_len = max_len;
  in.config.causal = c.causal;
  in.config.seed = seed;
  for (const OptionSpec& s : p.info->options) in.config.options.set(s.name, s.default_value);
  for (const auto& [k, v] : c.variant) {
    NA_CHECK(in.config.options.has(k), "plugin '" + p.info->name + "' " + c.label,
             "the test variant sets option '", k, "', which the plugin does not declare");
    in.config.options.set(k, v);
  }
  in.attention = p.create(in.config);
  NA_CHECK(in.attention != nullptr, "plugin '" + p.info->name + "'", "create returned no attention");
  in.specs = in.attention->parameters();
  for (size_t i = 0; i < in.specs.size(); ++i) {
    const ParamSpec& s = in.specs[i];
    Tensor t = Tensor::empty(s.shape);
    uint64_t key = Rng::mix(seed, 1000 + i);
    // Wider than declared: a zero-initialised bias must still carry its gradient terms.
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

namespace {

// The OptionValue alternative each OptionType holds (variant order: int64, double, bool, string).
size_t alternative(OptionType t) {
  switch (t) {
    case OptionType::Int: return 0;
    case OptionType::Float: return 1;
    case OptionType::Bool: return 2;
    case OptionType::String: return 3;
  }
  return 4;
}

// "" when v fits spec, else why not.
std::string misfit(const OptionSpec& spec, const OptionValue& v) {
  if (v.index() != alternative(spec.type))
    return cat("is not of its declared type ", option_type_name(spec.type),
               spec.type == OptionType::Float ? " (write a double, e.g. 2.0, not 2)" : "");
  if (spec.type == OptionType::String && !spec.choices.empty()) {
    const std::string& s = std::get<std::string>(v);
    bool listed = false;
    for (const std::string& c : spec.choices) listed = listed || c == s;
    if (!listed) return cat("'", s, "' is not one of its choices");
  }
  return "";
}

}  // namespace

CheckResult check_options(const PluginInfo& info) {
  CheckResult r;
  r.check = "options";
  r.variant = "declaration";
  std::string problems;
  auto problem = [&](std::string what) {
    problems += (problems.empty() ? "" : "; ") + what;
    r.error += 1;
  };
  std::set<std::string> names;
  for (const OptionSpec& s : info.options) {
    if (s.name.empty()) problem("an option has no name");
    if (!names.insert(s.name).second) problem(cat("option '", s.name, "' is declared twice"));
    if (std::string why = misfit(s, s.default_value); !why.empty())
      problem(cat("option '", s.name, "': its default ", why));
  }
  for (size_t i = 0; i < info.test_variants.size(); ++i)
    for (const auto& [k, v] : info.test_variants[i]) {
      const OptionSpec* spec = nullptr;
      for (const OptionSpec& s : info.options) spec = s.name == k ? &s : spec;
      if (!spec) problem(cat("test_variants[", i, "] sets '", k, "', which is not a declared option"));
      else if (std::string why = misfit(*spec, v); !why.empty())
        problem(cat("test_variants[", i, "]: '", k, "' ", why));
    }
  if (!info.capabilities.causal && !info.capabilities.bidirectional)
    problem("capabilities declare neither causal nor bidirectional: no model can use it");
  r.ok = r.error == 0;
  if (!r.ok) r.detail = "fix the PluginInfo: " + problems;
  return r;
}

}  // namespace na::testing
