// The linformer, fastformer and delta plugins refuse the configurations they cannot run with an
// error that names the plugin and says why (the conformance suite covers what they can run).
#include <doctest/doctest.h>

#include "plugin_loader.h"

using namespace na;

namespace {

AttentionConfig config_for(const PluginRegistry& reg, const std::string& name, bool causal, int64_t max_len) {
  AttentionConfig c;
  c.d_model = 16;
  c.n_heads = 2;
  c.max_len = max_len;
  c.causal = causal;
  for (const OptionSpec& s : reg.get(name).info->options) c.options.set(s.name, s.default_value);
  return c;
}

}  // namespace

TEST_CASE("linformer: a causal use is refused with the reason") {
  PluginRegistry reg;
  const AttentionConfig causal = config_for(reg, "linformer", true, 8);
  // Through the registry (what a model with causal: true does): the host's capability check.
  CHECK_THROWS_WITH_AS(reg.create("linformer", causal),
                       doctest::Contains("plugin 'linformer': it is bidirectional-only"), Error);
  // Created directly, the plugin itself explains why.
  CHECK_THROWS_WITH_AS(delete reg.get("linformer").descriptor->create(&causal),
                       doctest::Contains("plugin 'linformer': Linformer cannot be causal: its projections E, F mix "
                                         "all positions"),
                       Error);
}

TEST_CASE("linformer: max_len is required and a longer sequence is refused") {
  PluginRegistry reg;
  CHECK_THROWS_WITH_AS(reg.create("linformer", config_for(reg, "linformer", false, 0)),
                       doctest::Contains("plugin 'linformer': its parameters depend on the sequence length: set "
                                         "the model's max_len"),
                       Error);
  // Created directly, the plugin checks it too.
  const AttentionConfig no_len = config_for(reg, "linformer", false, 0);
  CHECK_THROWS_WITH_AS(delete reg.get("linformer").descriptor->create(&no_len),
                       doctest::Contains("linformer: needs the longest sequence length (the model's max_len)"), Error);
  auto attn = reg.create("linformer", config_for(reg, "linformer", false, 8));
  OwnedParams p = make_params(attn->parameters(), 1);
  CHECK(p.set["E"].shape() == Shape{2, 64, 8});  // (H, k, max_len)
  Tensor x = Tensor::zeros({1, 9, 16});
  CHECK_THROWS_WITH_AS(attn->forward(tape().leaf(x), p.set, {}),
                       doctest::Contains("linformer: sequence length T = 9 exceeds max_len = 8"), Error);
  tape().reset();
  Tensor shorter = Tensor::zeros({1, 5, 16});  // shorter sequences use the first T columns
  CHECK(attn->forward(tape().leaf(shorter), p.set, {}).shape() == Shape{1, 5, 16});
  tape().reset();
}

TEST_CASE("delta is causal only; fastformer's RNN form needs a causal model") {
  PluginRegistry reg;
  CHECK_THROWS_WITH_AS(reg.create("delta", config_for(reg, "delta", false, 8)),
                       doctest::Contains("plugin 'delta': it is causal-only"), Error);
  auto ff = reg.create("fastformer", config_for(reg, "fastformer", false, 8));
  CHECK_THROWS_WITH_AS(ff->init_state(1), doctest::Contains("fastformer: the recurrent form is causal"), Error);
}
