// Validating a plugin's options against what it declares, from YAML or from key=value text.
#pragma once
#include <map>
#include <string>

#include <yaml-cpp/yaml.h>

#include "nanoattn/attention.h"

namespace na {

// Every declared option gets the given value (checked against its type and choices) or its
// default. An unknown key or a wrong type throws na::Error naming `where` (e.g.
// "exp.yaml:12:7"), the key, and the valid options. `node` may be null (all defaults).
Options resolve_options(const PluginInfo& info, const YAML::Node& node, const std::string& where);
Options resolve_options(const PluginInfo& info, const std::map<std::string, std::string>& given,
                        const std::string& where);

// "  name (type, default X[, one of a|b]): doc" per option, one per line.
std::string describe_options(const PluginInfo& info);

}  // namespace na
