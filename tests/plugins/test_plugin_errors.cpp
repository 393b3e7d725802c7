// Every way loading or configuring a plugin can go wrong gives a clear na::Error (or a
// recorded rejection with the reason), never a crash.
#include <doctest/doctest.h>

#include "plugin_loader.h"
#include "plugin_options.h"

using namespace na;

namespace {
const std::string kFixtures = NANOATTN_TEST_FIXTURE_DIR;

std::string rejection_of(const PluginRegistry& reg, const std::string& file) {
  for (const RejectedPlugin& r : reg.rejected())
    if (r.path.find(file) != std::string::npos) return r.reason;
  return "(not rejected)";
}
}  // namespace

TEST_CASE("plugin errors: an unknown name lists the available plugins and the search path") {
  PluginRegistry reg;
  CHECK_THROWS_WITH_AS(reg.get("sofmax"),
                       doctest::Contains("no attention plugin named 'sofmax'. Available: "), Error);
  CHECK_THROWS_WITH_AS(reg.get("sofmax"), doctest::Contains(" linear, "), Error);
  CHECK_THROWS_WITH_AS(reg.get("sofmax"), doctest::Contains(", softmax"), Error);
  CHECK_THROWS_WITH_AS(reg.get("sofmax"), doctest::Contains("NANOATTN_PLUGIN_PATH"), Error);
}

TEST_CASE("plugin errors: a library without the entry symbol is skipped with the reason") {
  PluginRegistry reg({kFixtures + "/no_entry"});
  std::string why = rejection_of(reg, "no_entry.so");
  CHECK(why.find("not a nanoattn attention plugin: it exports no 'nanoattn_attention_plugin' symbol") != std::string::npos);
  CHECK(reg.has("softmax"));  // the rest of the search path still loads
  // Asking for it by name shows the skipped file and why.
  std::string expect = "skipped " + kFixtures + "/no_entry/no_entry.so: not a nanoattn";
  CHECK_THROWS_WITH_AS(reg.get("no_entry"), doctest::Contains(expect.c_str()), Error);
}

TEST_CASE("plugin errors: an ABI major mismatch names both versions") {
  PluginRegistry reg({kFixtures + "/bad_abi"});
  std::string why = rejection_of(reg, "bad_abi.so");
  CHECK(why.find("built for attention ABI 999.0, but this nanoattn has ABI 1.1") != std::string::npos);
  CHECK(why.find("rebuild the plugin") != std::string::npos);
}

TEST_CASE("plugin errors: a file that is not a shared library at all") {
  PluginRegistry reg;
  std::string bogus = std::string(NANOATTN_TEST_BINARY_DIR) + "/not_a_library.so";
  { FILE* f = std::fopen(bogus.c_str(), "w"); std::fputs("hello", f); std::fclose(f); }
  CHECK_FALSE(reg.load_file(bogus));
  CHECK(rejection_of(reg, "not_a_library.so").find("not a shared library: it does not start with the ELF magic bytes") !=
        std::string::npos);
}

TEST_CASE("plugin errors: unknown options and wrong types in YAML list the valid options") {
  PluginRegistry reg;
  const PluginInfo& info = *reg.get("linear").info;
  YAML::Node unknown = YAML::Load("feature_map: elu\nfeture_dim: 64\n");
  CHECK_THROWS_WITH_AS(resolve_options(info, unknown, "exp.yaml"),
                       doctest::Contains("exp.yaml:2:1: plugin 'linear' has no option 'feture_dim'. Valid options:\n  feature_map (string, default elu"), Error);
  YAML::Node wrong = YAML::Load("key_dim: wide\n");
  CHECK_THROWS_WITH_AS(resolve_options(info, wrong, "exp.yaml"),
                       doctest::Contains("exp.yaml:1:10: option 'key_dim' of plugin 'linear' must be an integer, got 'wide'"), Error);
  YAML::Node choice = YAML::Load("feature_map: cosine\n");
  CHECK_THROWS_WITH_AS(resolve_options(info, choice, "exp.yaml"),
                       doctest::Contains("must be one of elu|relu|dpfp|favor, got 'cosine'"), Error);
  YAML::Node good = YAML::Load("feature_map: dpfp\nnu: 3\nnormalize: false\n");
  Options o = resolve_options(info, good, "exp.yaml");
  CHECK(o.get_string("feature_map") == "dpfp");
  CHECK(o.get_int("nu") == 3);
  CHECK_FALSE(o.get_bool("normalize"));
  CHECK(o.get_float("eps") == doctest::Approx(1e-6));  // defaulted
}

TEST_CASE("plugin options: an integer option refuses a fraction or an out-of-range value, from YAML and key=value") {
  PluginRegistry reg;
  const PluginInfo& info = *reg.get("linear").info;
  CHECK_THROWS_WITH_AS(resolve_options(info, YAML::Load("key_dim: 2.5\n"), "exp.yaml"),
                       doctest::Contains("exp.yaml:1:10: option 'key_dim' of plugin 'linear' must be an integer, got '2.5' "
                                         "(a fraction: give a whole number, e.g. 2 or 3).\nValid options:\n"),
                       Error);
  CHECK_THROWS_WITH_AS(resolve_options(info, YAML::Load("nu: 1e30\n"), "exp.yaml"),
                       doctest::Contains("exp.yaml:1:5: option 'nu' of plugin 'linear' must be an integer, got '1e30' (out "
                                         "of range: it must be between -9223372036854775808 and 9223372036854775807)"),
                       Error);
  CHECK_THROWS_WITH_AS(resolve_options(info, {{"features", "99999999999999999999"}}, "--option features=99999999999999999999"),
                       doctest::Contains("--option features=99999999999999999999: option 'features' of plugin 'linear' "
                                         "must be an integer, got '99999999999999999999' (out of range"),
                       Error);
  CHECK_THROWS_WITH_AS(resolve_options(info, {{"key_dim", "0.5"}}, "--option key_dim=0.5"),
                       doctest::Contains("(a fraction: give a whole number, e.g. 0 or 1)"), Error);
  // A whole number in any plain form is that number.
  Options o = resolve_options(info, YAML::Load("key_dim: 6.4e1\nnu: 0x3\nfeatures: 2.0\n"), "exp.yaml");
  CHECK(o.get_int("key_dim") == 64);
  CHECK(o.get_int("nu") == 3);
  CHECK(o.get_int("features") == 2);
  CHECK(resolve_options(info, {{"key_dim", "1e2"}}, "--option").get_int("key_dim") == 100);
}

TEST_CASE("plugin errors: a bidirectional-only plugin used causally is refused") {
  PluginRegistry reg({kFixtures + "/bidir_only"});
  AttentionConfig config;
  config.d_model = 8;
  config.n_heads = 2;
  config.causal = true;
  CHECK_THROWS_WITH_AS(reg.create("bidir_only", config),
                       doctest::Contains("plugin 'bidir_only': it is bidirectional-only (it attends to later tokens), so it "
                                         "cannot be used in a causal model"), Error);
  config.causal = false;
  CHECK(reg.create("bidir_only", config) != nullptr);
}
