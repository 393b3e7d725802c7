// The conformance suite's cases: every plugin found on the search path, in every test variant
// it declares, in every mode it supports. The checks are the testing library's
// (nanoattn/conformance.h), the same ones `nanoattn check-plugin` runs.
#pragma once
#include <string>
#include <vector>

#include "nanoattn/testing.h"
#include "plugin_loader.h"

namespace na::testing {

struct PluginCase {
  const LoadedPlugin* plugin;
  PluginUnderTest target;
  ConformanceCase c;
  std::string label;  // "linear {feature_map=dpfp, nu=2} causal"
};

// The registry is built once: NANOATTN_PLUGIN_PATH, then the bundled plugin folder.
const PluginRegistry& registry();
std::vector<PluginCase> plugin_cases();

}  // namespace na::testing
