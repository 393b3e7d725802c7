// `nanoattn check-plugin PATH.so [--variant key=value,...] [--quick]`: the conformance suite on
// one plugin file (nanoattn/conformance.h: the checks tests/conformance runs), one row per
// check; exits 1 naming the checks that failed.
#include <cstdio>
#include <filesystem>
#include <set>

#include "commands.h"
#include "nanoattn/conformance.h"
#include "plugin_loader.h"
#include "plugin_options.h"

namespace na::cli {

namespace {

// "a=1,b=x" -> {a: "1", b: "x"}; typed and checked against the declaration by resolve_options.
std::map<std::string, std::string> parse_variant(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    size_t eq = item.find('=');
    NA_CHECK(eq != std::string::npos && eq > 0, "--variant",
             "'", item, "' is not key=value: write e.g. --variant feature_map=relu,nu=2");
    out[item.substr(0, eq)] = item.substr(eq + 1);
    start = end + 1;
  }
  return out;
}

int check_plugin(const std::string& path, const std::vector<std::string>& variant_texts, bool quick) {
  NA_CHECK(std::filesystem::is_regular_file(path), path,
           "no such file: give the plugin's .so (built by nanoattn_add_attention_plugin)");
  PluginRegistry reg = PluginRegistry::of_files({std::filesystem::absolute(path).string()});
  if (reg.plugins().empty())
    throw Error(path, reg.rejected().empty() ? std::string("not loaded") : reg.rejected().front().reason);
  const LoadedPlugin& plugin = reg.plugins().front();
  std::vector<testing::Variant> variants;
  for (const std::string& text : variant_texts) {
    std::map<std::string, std::string> given = parse_variant(text);
    Options resolved = resolve_options(*plugin.info, given, "--variant " + text);
    testing::Variant v;
    for (const auto& [k, _] : given) v[k] = resolved.values().at(k);
    variants.push_back(v);
  }
  testing::PluginUnderTest target{plugin.info, [&](const AttentionConfig& c) { return reg.create(plugin.name, c); },
                                  &plugin.capabilities};
  std::printf("check-plugin: %s (%s)%s\n", plugin.name.c_str(), plugin.path.c_str(), quick ? ", quick" : "");
  std::fflush(stdout);
  std::vector<testing::CheckResult> results =
      testing::check_conformance(target, testing::conformance_cases(*plugin.info, variants), {.quick = quick});
  std::printf("%s", testing::format_results(results).c_str());
  std::set<std::string> failed;
  for (const testing::CheckResult& r : results)
    if (!r.ok) failed.insert(r.check);
  if (failed.empty()) {
    std::printf("check-plugin: %s passes all %zu checks\n", plugin.name.c_str(), results.size());
    return 0;
  }
  std::string names;
  for (const std::string& f : failed) names += (names.empty() ? "" : ", ") + f;
  std::fprintf(stderr, "check-plugin: %s FAILED: %s (details above)\n", plugin.name.c_str(), names.c_str());
  return 1;
}

}  // namespace

void add_check_plugin_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "check-plugin",
      "Run the conformance suite on one attention plugin: gradients, reference, causality, RNN form, threads, "
      "options");
  auto path = std::make_shared<std::string>();
  auto variants = std::make_shared<std::vector<std::string>>();
  auto quick = std::make_shared<bool>(false);
  cmd->add_option("plugin", *path, "the plugin's .so file")->required();
  cmd->add_option("--variant", *variants,
                  "option set to check instead of the plugin's test_variants, e.g. feature_map=relu,nu=2 "
                  "(repeatable)");
  cmd->add_flag("--quick", *quick, "fewer finite differences, RNN form at T = 64 only");
  cmd->callback([=] {
    if (int rc = check_plugin(*path, *variants, *quick)) std::exit(rc);
  });
}

}  // namespace na::cli
