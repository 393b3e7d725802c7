// Shared set-up of the plugin conformance suite: every plugin found on the search path, in
// every test variant it declares, in every mode (causal / bidirectional) it supports.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "gradcheck.h"
#include "plugin_loader.h"

namespace na::testing {

struct PluginCase {
  const LoadedPlugin* plugin;
  std::map<std::string, OptionValue> variant;
  bool causal;
  std::string label;  // "linear {feature_map=dpfp, nu=2} causal"
};

// The registry is built once: NANOATTN_PLUGIN_PATH, then the bundled plugin folder.
const PluginRegistry& registry();
std::vector<PluginCase> plugin_cases();

// An attention instance for the case, with its parameters drawn wider than their declared
// initialisers (so every term of every gradient matters) from `seed`.
struct Instance {
  std::unique_ptr<IAttention> attention;
  std::vector<ParamSpec> specs;
  std::vector<Tensor> param_values;
  AttentionConfig config;
};
Instance instantiate(const PluginCase& c, int64_t d_model, int64_t n_heads, int64_t max_len, uint64_t seed);

// ParamSet over vars (in the order of specs).
ParamSet param_set(const std::vector<ParamSpec>& specs, const std::vector<Var>& vars, size_t first);

}  // namespace na::testing
