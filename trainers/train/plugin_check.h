// Provenance of a checkpoint's plugins: a model evaluated, sampled or resumed with an attention
// plugin whose .so is not the one it was trained with may give other numbers, so the commands
// that load a checkpoint refuse that unless told otherwise (--allow-plugin-change).
#pragma once
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace na {

class PluginRegistry;

using PluginHashes = std::vector<std::pair<std::string, std::string>>;  // name -> SHA-256 hex

// Every loaded plugin's name and the SHA-256 of its .so, in load order (what checkpoints store).
PluginHashes plugin_hashes(const PluginRegistry& plugins);

struct PluginChange {
  std::string plugin, saved_sha256, loaded_sha256;
};

// The plugins among `used` ("softmax", "linear+softmax": attention_plugins()) whose hash in the
// checkpoint differs from the loaded .so's. A plugin the checkpoint does not list (written before
// hashes were stored) or that is not loaded is no change: the model would not build without it.
std::vector<PluginChange> plugin_changes(const PluginHashes& saved, const PluginRegistry& plugins,
                                         const std::string& used);

// No changes: nothing. Changes and !allow: throws na::Error naming `checkpoint`, each plugin,
// both hashes (12 hex digits) and the fix. allow: prints a warning to `warn` per change.
void check_plugin_changes(const std::vector<PluginChange>& changes, const std::string& checkpoint, bool allow,
                          std::FILE* warn);

// [{"plugin", "checkpoint_sha256", "loaded_sha256"}, ...]: how eval JSON and summary.json record them.
nlohmann::json plugin_changes_json(const std::vector<PluginChange>& changes);

}  // namespace na
