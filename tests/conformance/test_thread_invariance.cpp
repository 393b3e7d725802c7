// Conformance, continued: every plugin (in every test variant and mode) gives bitwise the same
// output and gradients (of the input and of every declared parameter) on 1 and 2 threads, as
// the README promises for the whole framework (fixed chunking, fixed reduction order).
#include <doctest/doctest.h>

#include "conformance.h"

using namespace na;
using namespace na::testing;

TEST_CASE("conformance: 1 and 2 threads give bitwise the same forward and backward") {
  // B * H = 6 (batch, head) pairs and 40 tokens: several parallel chunks in every kernel.
  const int64_t B = 3, T = 40, C = 16, H = 2;
  for (const PluginCase& c : plugin_cases()) {
    INFO(c.label);
    Instance in = instantiate(c, C, H, T, 15);
    std::vector<Tensor> inputs{random_tensor({B, T, C}, 5)};
    inputs.insert(inputs.end(), in.param_values.begin(), in.param_values.end());
    Instance* inst = &in;
    CHECK_THREAD_INVARIANT(
        [inst](const std::vector<Var>& v) {
          return inst->attention->forward(v[0], param_set(inst->specs, v, 1), {});
        },
        inputs);
  }
}
