// `nanoattn plugins [--json] [--path DIR]...`: every attention plugin found on the search path,
// with its options, defaults, capabilities and file; and every file that was skipped, and why.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "plugin_loader.h"
#include "plugin_options.h"

namespace na::cli {

namespace {

std::vector<std::pair<const char*, bool>> capability_list(const Capabilities& c) {
  return {{"causal", c.causal},
          {"bidirectional", c.bidirectional},
          {"recurrent", c.recurrent},
          {"needs_fixed_length", c.needs_fixed_length},
          {"key_padding_mask", c.key_padding_mask},
          {"kv_cache", c.kv_cache}};
}

nlohmann::json option_json(const OptionValue& v) {
  return std::visit([](const auto& x) { return nlohmann::json(x); }, v);
}

nlohmann::json registry_json(const PluginRegistry& reg) {
  nlohmann::json out;
  out["search_path"] = reg.search_path();
  out["plugins"] = nlohmann::json::array();
  for (const LoadedPlugin& p : reg.plugins()) {
    nlohmann::json j{{"name", p.name}, {"file", p.path}, {"description", p.info->description}};
    for (auto [name, on] : capability_list(p.capabilities)) j["capabilities"][name] = on;
    j["options"] = nlohmann::json::array();
    for (const OptionSpec& o : p.info->options)
      j["options"].push_back({{"name", o.name},
                              {"type", option_type_name(o.type)},
                              {"default", option_json(o.default_value)},
                              {"doc", o.doc},
                              {"choices", o.choices}});
    out["plugins"].push_back(j);
  }
  out["rejected"] = nlohmann::json::array();
  for (const RejectedPlugin& r : reg.rejected()) out["rejected"].push_back({{"file", r.path}, {"reason", r.reason}});
  return out;
}

void print_text(const PluginRegistry& reg) {
  for (const LoadedPlugin& p : reg.plugins()) {
    std::printf("%s  (%s)\n  %s\n  capabilities:", p.name.c_str(), p.path.c_str(), p.info->description.c_str());
    for (auto [name, on] : capability_list(p.capabilities))
      if (on) std::printf(" %s", name);
    std::printf("\n  options:%s\n%s\n", p.info->options.empty() ? " none" : "",
                describe_options(*p.info).c_str());
  }
  for (const RejectedPlugin& r : reg.rejected()) std::printf("skipped %s: %s\n", r.path.c_str(), r.reason.c_str());
  std::printf("search path:");
  for (const std::string& d : reg.search_path()) std::printf(" %s", d.c_str());
  std::printf("\n");
}

}  // namespace

void add_plugins_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("plugins", "List the attention plugins found, with their options and capabilities");
  auto json = std::make_shared<bool>(false);
  auto dirs = std::make_shared<std::vector<std::string>>();
  cmd->add_flag("--json", *json, "print JSON instead of text");
  cmd->add_option("--path", *dirs, "extra folder to search first (repeatable)");
  cmd->callback([=] {
    PluginRegistry reg(*dirs);
    if (*json) std::printf("%s\n", registry_json(reg).dump(2).c_str());
    else print_text(reg);
  });
}

}  // namespace na::cli
