#include "train/plugin_check.h"

#include <cstdio>
#include <sstream>

#include "data/sha256.h"
#include "nanoattn/error.h"
#include "plugin_loader.h"

namespace na {

PluginHashes plugin_hashes(const PluginRegistry& plugins) {
  PluginHashes out;
  for (const LoadedPlugin& p : plugins.plugins()) out.emplace_back(p.name, sha256_file(p.path));
  return out;
}

std::vector<PluginChange> plugin_changes(const PluginHashes& saved, const PluginRegistry& plugins,
                                         const std::string& used) {
  std::vector<PluginChange> out;
  std::stringstream ss(used);
  for (std::string name; std::getline(ss, name, '+');) {
    if (!plugins.has(name)) continue;
    for (const auto& [saved_name, saved_hash] : saved) {
      if (saved_name != name) continue;
      const std::string now = sha256_file(plugins.get(name).path);
      if (now != saved_hash) out.push_back({name, saved_hash, now});
    }
  }
  return out;
}

namespace {
std::string describe(const PluginChange& c) {
  return cat("plugin '", c.plugin, "' is not the one it was trained with (sha256 ", c.saved_sha256.substr(0, 12),
             "... in the checkpoint, ", c.loaded_sha256.substr(0, 12), "... loaded)");
}
}  // namespace

void check_plugin_changes(const std::vector<PluginChange>& changes, const std::string& checkpoint, bool allow,
                          std::FILE* warn) {
  if (changes.empty()) return;
  if (!allow) {
    std::string list;
    for (const PluginChange& c : changes) list += (list.empty() ? "" : "; ") + describe(c);
    throw Error(checkpoint, cat(list, ": its numbers may differ. Load the plugin build that trained it (its "
                                "plugin_paths, NANOATTN_PLUGIN_PATH), or pass --allow-plugin-change to go on "
                                "with this one (the change is recorded)"));
  }
  for (const PluginChange& c : changes)
    std::fprintf(warn, "warning: %s: %s; going on (--allow-plugin-change)\n", checkpoint.c_str(),
                 describe(c).c_str());
}

nlohmann::json plugin_changes_json(const std::vector<PluginChange>& changes) {
  nlohmann::json j = nlohmann::json::array();
  for (const PluginChange& c : changes)
    j.push_back({{"plugin", c.plugin}, {"checkpoint_sha256", c.saved_sha256}, {"loaded_sha256", c.loaded_sha256}});
  return j;
}

}  // namespace na
