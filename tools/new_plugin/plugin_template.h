// The files `nanoattn new-plugin` writes: a buildable out-of-tree attention plugin that passes
// `nanoattn check-plugin` as generated (tests/plugins/new_plugin.sh builds and checks it).
#pragma once
#include <string>

namespace na::cli {

// NAME: a C identifier in lower case ([a-z][a-z0-9_]*), the plugin's name and file stem.
std::string plugin_cmakelists(const std::string& name);
std::string plugin_source(const std::string& name, bool recurrent);
std::string plugin_experiment(const std::string& name);

}  // namespace na::cli
