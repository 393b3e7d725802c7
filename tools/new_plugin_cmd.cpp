// `nanoattn new-plugin NAME [--dir D] [--recurrent]`: writes a buildable out-of-tree attention
// plugin (tools/new_plugin/plugin_template.cpp) into D (default: ./NAME).
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "commands.h"
#include "nanoattn/error.h"
#include "new_plugin/plugin_template.h"

namespace na::cli {

namespace {

namespace fs = std::filesystem;

void check_name(const std::string& name) {
  bool ok = !name.empty() && name[0] >= 'a' && name[0] <= 'z';
  for (char c : name) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
  NA_CHECK(ok, "new-plugin", "'", name, "' is not a usable plugin name: use lower-case letters, digits and _, "
           "starting with a letter (it names the .so, the YAML's plugin: key and C++ identifiers)");
}

void write(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  NA_CHECK(out.flush().good(), path.string(), "cannot be written");
}

}  // namespace

void add_new_plugin_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("new-plugin", "Write a buildable out-of-tree attention plugin to start from");
  auto name = std::make_shared<std::string>();
  auto dir = std::make_shared<std::string>();
  auto recurrent = std::make_shared<bool>(false);
  cmd->add_option("name", *name, "the plugin's name: lower-case letters, digits, _")->required();
  cmd->add_option("--dir", *dir, "folder to write it to (default: ./NAME)");
  cmd->add_flag("--recurrent", *recurrent, "with the RNN form (init_state, attend_step)");
  cmd->callback([=] {
    check_name(*name);
    const fs::path d = dir->empty() ? fs::path(*name) : fs::path(*dir);
    const std::vector<std::pair<fs::path, std::string>> files = {
        {d / "CMakeLists.txt", plugin_cmakelists(*name)},
        {d / (*name + ".cpp"), plugin_source(*name, *recurrent)},
        {d / "experiment.yaml", plugin_experiment(*name)}};
    for (const auto& [path, _] : files)  // all checked first: nothing half-written
      NA_CHECK(!fs::exists(path), path.string(), "already exists: new-plugin never overwrites; pick another --dir");
    fs::create_directories(d);
    for (const auto& [path, text] : files) write(path, text);
    std::printf("new-plugin: wrote %s/{CMakeLists.txt, %s.cpp, experiment.yaml}. Next:\n"
                "  cd %s && cmake -S . -B build -DCMAKE_PREFIX_PATH=<nanoattn install prefix> && cmake --build build\n"
                "  ctest --test-dir build --output-on-failure   # nanoattn check-plugin build/%s.so\n"
                "  nanoattn run experiment.yaml\n",
                d.c_str(), name->c_str(), d.c_str(), name->c_str());
  });
}

}  // namespace na::cli
