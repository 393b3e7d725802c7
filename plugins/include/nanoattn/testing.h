// Testing a plugin or an op of your own: the finite-difference gradient checker and the
// plugin conformance checks (link nanoattn::testing), plus doctest macros around them.
// The library itself does not use doctest: the macros expand only in your test files.
//
//   #include <doctest/doctest.h>
//   #include <nanoattn/testing.h>
//   TEST_CASE("my gate's gradient") {
//     CHECK_GRADIENTS([](const std::vector<na::Var>& v) { return my_gate(v[0]); },
//                     {na::testing::random_tensor({2, 8}, 1)});
//   }
#pragma once
#include "nanoattn/conformance.h"
#include "nanoattn/gradcheck.h"

// In a doctest case: CHECK_GRADIENTS(f, inputs[, options[, differentiable]]).
#define CHECK_GRADIENTS(...)                                      \
  do {                                                            \
    auto gc_result_ = ::na::testing::gradcheck(__VA_ARGS__);      \
    INFO(gc_result_.report);                                      \
    CHECK(gc_result_.ok);                                         \
  } while (0)

// In a doctest case: CHECK_THREAD_INVARIANT(f, inputs[, differentiable]).
#define CHECK_THREAD_INVARIANT(...)                                       \
  do {                                                                    \
    auto ti_result_ = ::na::testing::thread_invariance(__VA_ARGS__);      \
    INFO(ti_result_.report);                                              \
    CHECK(ti_result_.ok);                                                 \
  } while (0)

// In a doctest case: CHECK_CONFORMS(result) for a CheckResult (or each of a vector of them).
#define CHECK_CONFORMS(...)                                                        \
  do {                                                                             \
    for (const ::na::testing::CheckResult& cr_ : ::na::testing::as_results(__VA_ARGS__)) { \
      INFO(cr_.check << " " << cr_.variant << ": " << cr_.detail);                 \
      CHECK(cr_.ok);                                                               \
    }                                                                              \
  } while (0)

namespace na::testing {
inline std::vector<CheckResult> as_results(const CheckResult& r) { return {r}; }
inline std::vector<CheckResult> as_results(const std::vector<CheckResult>& r) { return r; }
}  // namespace na::testing
