#include "plugin_loader.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "elf_check.h"

namespace na {

namespace fs = std::filesystem;

namespace {

constexpr const char* kEntry = "nanoattn_attention_plugin";

std::vector<std::string> split_path(const char* value) {
  std::vector<std::string> dirs;
  if (!value) return dirs;
  std::string s = value;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(':', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) dirs.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return dirs;
}

std::string list_names(const std::vector<LoadedPlugin>& plugins) {
  std::string s;
  for (const LoadedPlugin& p : plugins) s += (s.empty() ? "" : ", ") + p.name;
  return s.empty() ? "(none)" : s;
}

}  // namespace

std::string bundled_plugin_dir() {
  Dl_info info{};
  // Any symbol of libnanoattn tells us where that library is.
  if (!dladdr(reinterpret_cast<void*>(&apply_init), &info) || !info.dli_fname) return "";
  return (fs::path(info.dli_fname).parent_path() / "nanoattn" / "plugins").string();
}

PluginRegistry::PluginRegistry(const std::vector<std::string>& extra_dirs) {
  search_path_ = extra_dirs;
  for (const std::string& d : split_path(std::getenv("NANOATTN_PLUGIN_PATH"))) search_path_.push_back(d);
  std::string bundled = bundled_plugin_dir();
  if (!bundled.empty()) search_path_.push_back(bundled);
  for (const std::string& dir : search_path_) scan_dir(dir);
}

PluginRegistry PluginRegistry::of_files(const std::vector<std::string>& files) {
  PluginRegistry reg{NoScan{}};
  for (const std::string& f : files) reg.load_file(f);
  return reg;
}

void PluginRegistry::scan_dir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;  // a missing folder on the path is not an error
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().extension() == ".so" && entry.is_regular_file(ec)) files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());  // a stable order, whatever the file system's
  for (const std::string& f : files) load_file(f);
}

bool PluginRegistry::load_file(const std::string& path) {
  auto reject = [&](std::string why) {
    rejected_.push_back({path, std::move(why)});
    return false;
  };
  // dlopen trusts the file's headers: a truncated or foreign file could crash it (SIGBUS).
  if (std::string why = elf_problem(path); !why.empty()) return reject(why);
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* err = dlerror();
    return reject(cat("cannot be loaded: ", err ? err : "unknown dlopen error",
                      " (is it built for this machine, with its dependencies installed?)"));
  }
  using Entry = const NaAttentionPluginDescriptor* (*)();
  auto entry = reinterpret_cast<Entry>(dlsym(handle, kEntry));
  if (!entry)
    return reject(cat("not a nanoattn attention plugin: it exports no '", kEntry,
                      "' symbol (build it with nanoattn_add_attention_plugin and end one source "
                      "file with NANOATTN_ATTENTION_PLUGIN(Class, info))"));
  const NaAttentionPluginDescriptor* d = entry();
  if (!d) return reject(cat("'", kEntry, "' returned no descriptor"));
  if (d->abi_major != kAttentionAbiMajor || d->abi_minor > kAttentionAbiMinor)
    return reject(cat("built for attention ABI ", d->abi_major, ".", d->abi_minor,
                      ", but this nanoattn has ABI ", kAttentionAbiMajor, ".", kAttentionAbiMinor,
                      " (it needs the same major and a minor <= ", kAttentionAbiMinor,
                      "): rebuild the plugin against this nanoattn's installed SDK"));
  const std::string host_fp = NANOATTN_BUILD_FINGERPRINT;
  if (d->fingerprint == nullptr || host_fp != d->fingerprint)
    return reject(cat("built with '", d->fingerprint ? d->fingerprint : "(none)",
                      "' but this nanoattn was built with '", host_fp,
                      "': C++ types cross the plugin boundary, so rebuild the plugin with the "
                      "same compiler and nanoattn version"));
  const PluginInfo* info = nullptr;
  try {
    info = d->info ? d->info() : nullptr;
  } catch (const std::exception& e) {
    return reject(cat("its info() threw: ", e.what()));
  }
  if (!info || info->name.empty() || !d->create) return reject("its descriptor has no name, info or create function");
  for (const LoadedPlugin& p : plugins_)
    if (p.name == info->name)
      return reject(cat("plugin '", info->name, "' is shadowed by ", p.path, ", found earlier on the search path"));
  plugins_.push_back({info->name, path, d, info, declared_capabilities(info->capabilities, d->abi_minor)});
  return true;
}

Capabilities declared_capabilities(const Capabilities& c, uint32_t abi_minor) {
  Capabilities out = c;
  if (abi_minor < 1) out.kv_cache = false;  // padding in ABI 1.0, whatever its byte holds
  return out;
}

bool PluginRegistry::has(const std::string& name) const {
  return std::any_of(plugins_.begin(), plugins_.end(), [&](const LoadedPlugin& p) { return p.name == name; });
}

const LoadedPlugin& PluginRegistry::get(const std::string& name) const {
  for (const LoadedPlugin& p : plugins_)
    if (p.name == name) return p;
  std::string msg = cat("no attention plugin named '", name, "'. Available: ", list_names(plugins_),
                        ". Searched: ");
  for (size_t i = 0; i < search_path_.size(); ++i) msg += (i ? ":" : "") + search_path_[i];
  if (search_path_.empty()) msg += "(nothing)";
  msg += ". Add a folder with NANOATTN_PLUGIN_PATH or the experiment's 'plugin_paths:' list.";
  for (const RejectedPlugin& r : rejected_) msg += cat("\n  skipped ", r.path, ": ", r.reason);
  throw Error("plugins", msg);
}

std::unique_ptr<IAttention> PluginRegistry::create(const std::string& name, const AttentionConfig& config) const {
  const LoadedPlugin& p = get(name);
  const Capabilities& caps = p.capabilities;
  NA_CHECK(!config.causal || caps.causal, "plugin '" + name + "'",
           "it is bidirectional-only (it attends to later tokens), so it cannot be used in a "
           "causal model; use it with causal: false (an encoder), or pick a causal plugin");
  NA_CHECK(config.causal || caps.bidirectional, "plugin '" + name + "'",
           "it is causal-only, so it cannot be used with causal: false");
  NA_CHECK(!caps.needs_fixed_length || config.max_len > 0, "plugin '" + name + "'",
           "its parameters depend on the sequence length: set the model's max_len");
  AttentionConfig resolved = config;  // every declared option the caller left out: its default
  for (const OptionSpec& s : p.info->options)
    if (!resolved.options.has(s.name)) resolved.options.set(s.name, s.default_value);
  return std::unique_ptr<IAttention>(p.descriptor->create(&resolved));
}

}  // namespace na
