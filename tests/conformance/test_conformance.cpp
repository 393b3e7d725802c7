// The plugin conformance suite. It runs on every plugin found on the search path (the bundled
// folder and NANOATTN_PLUGIN_PATH, so an out-of-tree plugin is tested by pointing the variable
// at it), in every declared test variant and every mode the plugin supports. The checks and
// their bounds are the testing library's (plugins/include/nanoattn/conformance.h), shared with
// `nanoattn check-plugin`:
//   - the declaration: options, defaults, choices, test variants;
//   - finite-difference gradients of the input and of every declared parameter;
//   - agreement with the plugin's naive reference, forward and gradients (1e-5 relative);
//   - causality: changing tokens after t changes no output at <= t, bitwise;
//   - for recurrent plugins: step-by-step == parallel forward to 1e-5 of the largest output
//     at T = 64 and 512, and a state whose size does not grow.
#include <doctest/doctest.h>

#include <cstdio>

#include "conformance.h"

using namespace na;
using namespace na::testing;

TEST_CASE("conformance: the bundled plugins are discovered") {
  CHECK(registry().has("softmax"));
  CHECK(registry().has("linear"));
  for (const RejectedPlugin& r : registry().rejected()) MESSAGE("skipped " << r.path << ": " << r.reason);
  for (const PluginCase& c : plugin_cases()) std::printf("conformance case: %s\n", c.label.c_str());
}

TEST_CASE("conformance: every plugin's declaration (options, test variants, modes)") {
  for (const LoadedPlugin& p : registry().plugins()) {
    INFO(p.name);
    CHECK_CONFORMS(check_options(*p.info));
  }
}

TEST_CASE("conformance: gradients of the input and every declared parameter") {
  for (const PluginCase& c : plugin_cases()) {
    INFO(c.label);
    CHECK_CONFORMS(check_gradients(c.target, c.c));
  }
}

TEST_CASE("conformance: agreement with the naive reference") {
  for (const PluginCase& c : plugin_cases()) {
    INFO(c.label);
    CheckResult r = check_reference(c.target, c.c);
    CHECK_CONFORMS(r);
    MESSAGE(c.label << ": max |fused - reference| / largest |reference| " << r.error);
  }
}

TEST_CASE("conformance: causal plugins never look ahead") {
  for (const PluginCase& c : plugin_cases()) {
    if (!c.c.causal) continue;
    INFO(c.label);
    CHECK_CONFORMS(check_causality(c.target, c.c));
  }
}

TEST_CASE("conformance: recurrent form (RNN or KV cache) equals the parallel forward") {
  for (const PluginCase& c : plugin_cases()) {
    if (!c.c.causal || !(c.plugin->capabilities.recurrent || c.plugin->capabilities.kv_cache)) continue;
    INFO(c.label);
    for (const CheckResult& r : check_recurrent(c.target, c.c)) {
      MESSAGE(c.label << " " << r.check << " " << r.variant << ": " << r.error << " (bound " << r.bound << ")");
      CHECK_CONFORMS(r);
    }
  }
}
