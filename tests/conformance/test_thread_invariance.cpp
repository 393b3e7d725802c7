// Conformance, continued: every plugin (in every test variant and mode) gives bitwise the same
// output and gradients (of the input and of every declared parameter) on 1 and 2 threads, as
// the README promises for the whole framework (fixed chunking, fixed reduction order).
#include <doctest/doctest.h>

#include "conformance.h"

using namespace na;
using namespace na::testing;

TEST_CASE("conformance: 1 and 2 threads give bitwise the same forward and backward") {
  for (const PluginCase& c : plugin_cases()) {
    INFO(c.label);
    CHECK_CONFORMS(check_thread_invariance(c.target, c.c));
  }
}
