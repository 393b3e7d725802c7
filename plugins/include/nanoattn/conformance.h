// The attention plugin conformance checks, as functions: the doctest suite (tests/conformance)
// and `nanoattn check-plugin` both run these, and a plugin author can call them from a test of
// their own (nanoattn/testing.h). Each check returns one CheckResult: what it measured, the
// bound it holds that to, and on failure what went wrong.
//
// Inputs and parameters are drawn wider than the declared initialisers, so every term of every
// gradient matters. Bounds are relative to the magnitude of what is compared (float32 sums of
// the same terms in another order, by BLAS kernels that may block them differently).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nanoattn/attention.h"

namespace na::testing {

// A plugin to check: its declaration and how to make an instance (for a loaded .so, through
// the host's registry; in an author's own test, `std::make_unique<MyAttention>(config)`).
struct PluginUnderTest {
  const PluginInfo* info = nullptr;
  std::function<std::unique_ptr<IAttention>(const AttentionConfig&)> create;
  // For a loaded .so: the host's reading of its capabilities (LoadedPlugin::capabilities, which
  // ignores fields newer than its ABI). Null: info->capabilities (a plugin compiled in).
  const Capabilities* host_capabilities = nullptr;
  const Capabilities& capabilities() const { return host_capabilities ? *host_capabilities : info->capabilities; }
};

using Variant = std::map<std::string, OptionValue>;

// One option set in one mode.
struct ConformanceCase {
  Variant variant;
  bool causal = true;
  std::string label;  // "{feature_map=dpfp, nu=2} causal"
};

// Every variant (the plugin's test_variants, or `variants` when given; none: the defaults) in
// every mode its capabilities declare.
std::vector<ConformanceCase> conformance_cases(const PluginInfo& info, const std::vector<Variant>& variants = {});

struct CheckResult {
  std::string check;    // options, gradient, reference, causality, recurrent, state_bytes, threads
  std::string variant;  // the case's label ("" for a check of the declaration)
  double error = 0;     // what was measured ...
  double bound = 0;     // ... and the most it may be
  bool ok = true;
  std::string detail;   // on failure: what, where, and what to look at
};

struct ConformanceOptions {
  // Fewer finite differences (at most 48 elements of each input, evenly spread) and the
  // recurrent form at T = 64 only: a few times faster, for an edit-build-check loop.
  bool quick = false;
};

// The declaration: option names unique, defaults of the declared type and among the choices,
// test variants setting only declared options with values of their type, at least one mode.
CheckResult check_options(const PluginInfo& info);

// Finite-difference gradients of the input and of every declared parameter (the gradcheck
// defaults; elements at a kink of a relu-type map skipped, at most 25% of an input). error:
// the worst |numeric - backward| / allowed, bound 1.
CheckResult check_gradients(const PluginUnderTest& p, const ConformanceCase& c, const ConformanceOptions& o = {});
// forward against reference, outputs and gradients: max |difference| / largest |reference|.
CheckResult check_reference(const PluginUnderTest& p, const ConformanceCase& c);
// Causal cases: changing tokens after t changes no output at <= t, bitwise (error: the
// largest change seen; it must also change some later output, or the check proved nothing).
CheckResult check_causality(const PluginUnderTest& p, const ConformanceCase& c);
// Causal cases of recurrent plugins: token-by-token step() against the parallel forward
// ("recurrent", per T) and the state's bytes() after the last step against after the first
// ("state_bytes").
std::vector<CheckResult> check_recurrent(const PluginUnderTest& p, const ConformanceCase& c,
                                         const ConformanceOptions& o = {});
// Forward and backward on 1 and 2 threads: bitwise the same (error: the largest difference).
CheckResult check_thread_invariance(const PluginUnderTest& p, const ConformanceCase& c);

// Every check above on every case, options first.
std::vector<CheckResult> check_conformance(const PluginUnderTest& p, const std::vector<ConformanceCase>& cases,
                                           const ConformanceOptions& o = {});

// One row per result (check, variant, error, bound, pass/FAIL), then the detail of each failure.
std::string format_results(const std::vector<CheckResult>& results);

// ---- building blocks, for checks of one's own -----------------------------------------------
// An instance for the case with its parameters drawn from `seed` (wider than declared).
struct Instance {
  std::unique_ptr<IAttention> attention;
  std::vector<ParamSpec> specs;
  std::vector<Tensor> param_values;
  AttentionConfig config;
};
Instance instantiate(const PluginUnderTest& p, const ConformanceCase& c, int64_t d_model, int64_t n_heads,
                     int64_t max_len, uint64_t seed);
// ParamSet over vars[first], vars[first + 1], ... in the order of specs.
ParamSet param_set(const std::vector<ParamSpec>& specs, const std::vector<Var>& vars, size_t first);

}  // namespace na::testing
