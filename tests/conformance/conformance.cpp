#include "conformance.h"

namespace na::testing {

const PluginRegistry& registry() {
  static const PluginRegistry reg;
  return reg;
}

std::vector<PluginCase> plugin_cases() {
  std::vector<PluginCase> cases;
  for (const LoadedPlugin& p : registry().plugins()) {
    PluginUnderTest target{p.info, [name = p.name](const AttentionConfig& c) { return registry().create(name, c); },
                           &p.capabilities};
    for (ConformanceCase& c : conformance_cases(*p.info)) {
      std::string label = p.name + " " + c.label;
      cases.push_back({&p, target, std::move(c), std::move(label)});
    }
  }
  return cases;
}

}  // namespace na::testing
