// Models from YAML: parameter naming, the registry, and errors that name the file position.
#include <doctest/doctest.h>

#include "model.h"
#include "plugin_loader.h"

using namespace na;

namespace {
const char* kSmall = R"(d_model: 8
max_len: 6
blocks:
  - token_embedding: {}
  - positional: {kind: learned}
  - repeat:
      n: 2
      blocks:
        - residual: {norm: layernorm, norm_name: ln1, body: [{attention: {plugin: linear, n_heads: 2, options: {feature_map: dpfp}}}]}
        - residual: {norm: rmsnorm, norm_name: ln2, body: [{feed_forward: {mult: 2}}, {dropout: {p: 0.1}}]}
  - layernorm: {name: ln_f}
  - lm_head: {tied_to: tok.weight}
)";

const PluginRegistry& plugins() {
  static PluginRegistry reg;
  return reg;
}

std::string error_of(const std::string& yaml) {
  try {
    Model m(YAML::Load(yaml), "exp.yaml", 5, plugins(), 1);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

// The error that building `yaml` throws contains `expected`.
#define CHECK_ERROR(yaml, expected)      \
  do {                                   \
    std::string e_ = error_of(yaml);     \
    INFO(e_);                            \
    CHECK(e_.find(expected) != std::string::npos); \
  } while (0)

TEST_CASE("model: stable dotted names, a forward pass, and the same seed gives the same weights") {
  Model m(YAML::Load(kSmall), "exp.yaml", 5, plugins(), 7);
  std::vector<std::string> names;
  for (Parameter* p : m.params().all()) names.push_back(p->name());
  CHECK(names == std::vector<std::string>{
                     "tok.weight", "pos.weight", "blocks.0.ln1.weight", "blocks.0.ln1.bias",
                     "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias", "blocks.0.attn.proj.weight",
                     "blocks.0.attn.proj.bias", "blocks.0.ln2.weight", "blocks.0.fc.weight", "blocks.0.fc.bias",
                     "blocks.0.fc_out.weight", "blocks.0.fc_out.bias", "blocks.1.ln1.weight", "blocks.1.ln1.bias",
                     "blocks.1.attn.qkv.weight", "blocks.1.attn.qkv.bias", "blocks.1.attn.proj.weight",
                     "blocks.1.attn.proj.bias", "blocks.1.ln2.weight", "blocks.1.fc.weight", "blocks.1.fc.bias",
                     "blocks.1.fc_out.weight", "blocks.1.fc_out.bias", "ln_f.weight", "ln_f.bias"});
  std::vector<int32_t> ids = {0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1};
  Var logits = m.forward(ids, 2, 6);
  CHECK(logits.shape() == Shape{2, 6, 5});
  tape().backward(cross_entropy(logits, ids));
  CHECK(m.params().get("blocks.1.attn.qkv.weight").grad()[0] != 0.0f);
  tape().reset();
  Model again(YAML::Load(kSmall), "exp.yaml", 5, plugins(), 7);
  CHECK(again.params().get("blocks.0.fc.weight").value().to_vector() ==
        m.params().get("blocks.0.fc.weight").value().to_vector());
}

TEST_CASE("model: repeat with share builds one set of parameters (ALBERT)") {
  Model m(YAML::Load(R"(d_model: 8
max_len: 4
blocks:
  - token_embedding: {}
  - repeat: {n: 3, share: true, blocks: [{residual: {body: [{feed_forward: {}}]}}]}
  - lm_head: {}
)"),
          "exp.yaml", 5, plugins(), 1);
  CHECK(m.params().size() == 8);  // tok; one residual: norm w, b, fc w, b, fc_out w, b; head
  CHECK(m.params().find("blocks.fc.weight") != nullptr);
}

TEST_CASE("model: errors name the file position, the key and the valid choices") {
  CHECK_ERROR("d_model: 8\nmax_len: 4\nblocks:\n  - tokn_embedding: {}\n", "exp.yaml:4:5: unknown block 'tokn_embedding'; known blocks: attention, causal_conv, dropout");
  CHECK_ERROR("d_model: 8\nmax_len: 4\nblocks:\n  - feed_forward: {mul: 4}\n", "exp.yaml:4:20: block 'feed_forward' has no option 'mul'; valid options: chunks, hidden, mult, name");
  CHECK_ERROR("d_model: 8\nmax_len: 4\nblocks:\n  - attention: {n_heads: 3}\n", "attention: n_heads 3 must be > 0 and divide d_model 8");
  CHECK_ERROR("d_model: 8\nmax_len: 4\nblocks:\n  - attention: {plugin: sofmax}\n", "no attention plugin named 'sofmax'. Available: ");
  CHECK_ERROR("d_model: 0\nmax_len: 4\nblocks: []\n", "exp.yaml:1:10: model: 'd_model' must be > 0, got 0");
  CHECK_ERROR("d_model: 8\nmax_len: 4\ncausal: maybe\nblocks: []\n", "exp.yaml:3:9: model: 'causal' must be true or false, got 'maybe'");
  CHECK_ERROR("d_model: 8\nmax_len: 4\nlayers: 3\nblocks: []\n", "exp.yaml:3:1: model: unknown key 'layers'");
  CHECK_ERROR("d_model: 8\nmax_len: 4\nblocks:\n  - attention: {options: {feature_map: elu}}\n", "plugin 'softmax' has no option 'feature_map'");
}

TEST_CASE("model.attention: defaults for every attention block, which a block may override") {
  const char* yaml = R"(d_model: 8
max_len: 6
attention: {plugin: linear, n_heads: 2, options: {key_dim: 8}}
blocks:
  - token_embedding: {}
  - residual: {body: [{attention: {}}]}
  - residual: {norm_name: n2, body: [{attention: {name: second, plugin: softmax}}]}
  - lm_head: {tied_to: tok}
)";
  Model m(YAML::Load(yaml), "exp.yaml", 5, plugins(), 1);
  // key_dim 8 per head: q and k take 2 heads * 8 rows each, v takes d_model.
  CHECK(m.params().get("attn.qkv.weight").value().shape() == Shape{2 * 2 * 8 + 8, 8});
  // The second block names its own plugin, so the defaults' options do not apply to it.
  CHECK(m.params().get("second.qkv.weight").value().shape() == Shape{3 * 8, 8});
  // The first block is linear (an RNN form), the second softmax: the model names the second.
  CHECK(m.recurrent_unsupported().find("second uses plugin 'softmax'") != std::string::npos);
  // Defaults without options.
  const std::string plain = std::string(yaml).replace(std::string(yaml).find(", options: {key_dim: 8}"), 23, "");
  Model p(YAML::Load(plain), "exp.yaml", 5, plugins(), 1);
  CHECK(p.params().get("attn.qkv.weight").value().shape() == Shape{3 * 8, 8});
  CHECK(p.recurrent_unsupported().find("second uses plugin 'softmax'") != std::string::npos);
  CHECK_ERROR(std::string(yaml).replace(std::string(yaml).find("n_heads: 2"), 10, "n_heads: 3"),
              "n_heads 3 must be > 0 and divide d_model 8");
  CHECK_ERROR(std::string(yaml).replace(std::string(yaml).find("n_heads: 2"), 10, "n_head: 2"),
              "exp.yaml:3:29: model.attention: unknown key 'n_head'; valid keys: plugin, n_heads, options");
  CHECK_ERROR(std::string(yaml).replace(std::string(yaml).find("n_heads: 2"), 10, "n_heads: x"),
              "model.attention: n_heads must be an integer, got 'x'");
}
