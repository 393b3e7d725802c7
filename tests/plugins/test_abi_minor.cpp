// ABI 1.1 added Capabilities::kv_cache inside what was padding in 1.0: the host reads it only
// from plugins built for 1.1 or later, and plugins built for 1.0 still load.
#include <doctest/doctest.h>

#include "plugin_loader.h"

using namespace na;

TEST_CASE("abi: kv_cache is read only from plugins built for ABI 1.1 or later") {
  Capabilities c;
  c.causal = c.kv_cache = true;
  CHECK(declared_capabilities(c, 1).kv_cache);
  CHECK_FALSE(declared_capabilities(c, 0).kv_cache);
  CHECK(declared_capabilities(c, 0).causal);  // the 1.0 fields are kept
}

TEST_CASE("abi: an ABI 1.0 plugin with a stray byte where kv_cache lives loads without kv_cache") {
  PluginRegistry reg({std::string(NANOATTN_TEST_FIXTURE_DIR) + "/abi_1_0"});
  const LoadedPlugin& p = reg.get("abi_1_0");
  CHECK(p.descriptor->abi_minor == 0);
  CHECK(p.info->capabilities.kv_cache);   // what the stray byte says...
  CHECK_FALSE(p.capabilities.kv_cache);   // ...and what the host believes
  CHECK(p.capabilities.causal);
}

TEST_CASE("abi: the bundled softmax plugin declares a KV cache, linear an RNN") {
  PluginRegistry reg;
  CHECK(reg.get("softmax").capabilities.kv_cache);
  CHECK_FALSE(reg.get("softmax").capabilities.recurrent);
  CHECK(reg.get("linear").capabilities.recurrent);
  CHECK_FALSE(reg.get("linear").capabilities.kv_cache);
}
