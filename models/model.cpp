#include "model.h"

#include "plugin_loader.h"

namespace na {

namespace {
std::string mark(const std::string& where, const YAML::Node& n) {
  return n.Mark().line < 0 ? where : cat(where, ":", n.Mark().line + 1, ":", n.Mark().column + 1);
}

int64_t positive(const YAML::Node& model, const std::string& key, const std::string& where) {
  YAML::Node v = model[key];
  NA_CHECK(v, mark(where, model), "model: '", key, "' is required");
  int64_t x = 0;
  try {
    x = v.as<int64_t>();
  } catch (const YAML::Exception&) {
    throw Error(mark(where, v), cat("model: '", key, "' must be an integer, got '", v.Scalar(), "'"));
  }
  NA_CHECK(x > 0, mark(where, v), "model: '", key, "' must be > 0, got ", x);
  return x;
}
}  // namespace

Model::Model(const YAML::Node& node, const std::string& where, int64_t vocab,
             const PluginRegistry& plugins, uint64_t seed) {
  NA_CHECK(node && node.IsMap(), where, "model: expected a map with d_model, max_len, blocks, ...");
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    NA_CHECK(key == "d_model" || key == "vocab" || key == "max_len" || key == "causal" || key == "blocks",
             mark(where, kv.first), "model: unknown key '", key,
             "'; valid keys: d_model, vocab, max_len, causal, blocks");
  }
  dims_.d_model = positive(node, "d_model", where);
  dims_.max_len = positive(node, "max_len", where);
  dims_.vocab = vocab;
  if (node["vocab"] && node["vocab"].Scalar() != "auto") dims_.vocab = positive(node, "vocab", where);
  NA_CHECK(dims_.vocab > 0, mark(where, node), "model: the vocabulary size is unknown: set 'vocab' or load a corpus");
  if (YAML::Node c = node["causal"]) {
    NA_CHECK(c.IsScalar() && (c.Scalar() == "true" || c.Scalar() == "false"), mark(where, c),
             "model: 'causal' must be true or false, got '", c.IsScalar() ? c.Scalar() : "a map or list", "'");
    dims_.causal = c.Scalar() == "true";
  }
  store_.set_seed(seed);
  blocks_ = build_blocks(node["blocks"], "", where, dims_, store_, plugins);
}

Var Model::forward(std::span<const int32_t> ids, int64_t B, int64_t T, const ForwardOptions& opt) const {
  NA_CHECK(static_cast<int64_t>(ids.size()) == B * T, "model", "got ", ids.size(), " ids for B = ", B,
           ", T = ", T);
  NA_CHECK(T <= dims_.max_len, "model", "sequence length ", T, " exceeds the model's max_len ", dims_.max_len);
  BlockInput in{ids, B, T, opt};
  return run_blocks(blocks_, Var(), in);
}

}  // namespace na
