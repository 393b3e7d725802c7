// Finding, checking and loading attention plugins (host side).
//
// Search path, in order (the first plugin of a name wins; later ones are reported shadowed):
//   1. folders added by the caller (an experiment's `plugin_paths:` list)
//   2. NANOATTN_PLUGIN_PATH (colon-separated)
//   3. the folder bundled with this libnanoattn: <dir of libnanoattn.so>/nanoattn/plugins,
//      which is both the build tree's and the install prefix's lib/nanoattn/plugins
// Every *.so there has its ELF headers checked first (elf_check.h: a truncated or foreign file
// would crash dlopen), is opened with RTLD_NOW | RTLD_LOCAL and asked for its descriptor; a file
// that is not a plugin, or was built for another ABI, is recorded with the reason and skipped.
// Libraries are never closed: objects they made may outlive any scope we could track.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nanoattn/attention.h"

namespace na {

struct LoadedPlugin {
  std::string name;
  std::string path;  // the .so file
  const NaAttentionPluginDescriptor* descriptor;
  const PluginInfo* info;
  // info->capabilities as the host reads them: fields newer than the plugin's ABI minor are
  // false (kv_cache needs ABI 1.1). Read capabilities here, not through info.
  Capabilities capabilities;
};

// The capabilities a plugin built for ABI minor `abi_minor` declares.
Capabilities declared_capabilities(const Capabilities& c, uint32_t abi_minor);

struct RejectedPlugin {
  std::string path;
  std::string reason;  // why, and what to do
};

class PluginRegistry {
 public:
  // Scans `extra_dirs`, then NANOATTN_PLUGIN_PATH, then the bundled folder.
  explicit PluginRegistry(const std::vector<std::string>& extra_dirs = {});
  // Only the given files, no search path (`nanoattn check-plugin`: the file named, not a
  // bundled plugin of the same name).
  static PluginRegistry of_files(const std::vector<std::string>& files);

  // The plugin of that name; throws listing the available ones, the search path and any
  // rejected files.
  const LoadedPlugin& get(const std::string& name) const;
  bool has(const std::string& name) const;
  const std::vector<LoadedPlugin>& plugins() const { return plugins_; }
  const std::vector<RejectedPlugin>& rejected() const { return rejected_; }
  const std::vector<std::string>& search_path() const { return search_path_; }

  // Checks the configuration against the plugin's capabilities (e.g. a bidirectional-only
  // plugin used causally) and creates an instance. Options missing from `config.options`
  // get their declared defaults; validate user input with resolve_options first.
  std::unique_ptr<IAttention> create(const std::string& name, const AttentionConfig& config) const;

  // Loads one file; returns false and records the reason if it is not a usable plugin.
  bool load_file(const std::string& path);

 private:
  struct NoScan {};
  explicit PluginRegistry(NoScan) {}
  void scan_dir(const std::string& dir);

  std::vector<std::string> search_path_;
  std::vector<LoadedPlugin> plugins_;
  std::vector<RejectedPlugin> rejected_;
};

// The folder of plugins shipped with this libnanoattn (may not exist).
std::string bundled_plugin_dir();

}  // namespace na
