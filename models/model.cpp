#include "model.h"

#include <initializer_list>

#include "init_scheme.h"
#include "integer_text.h"
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
  const std::string why = v.IsScalar() ? parse_integer(v.Scalar(), x) : "must be an integer, got 'a map or list'";
  if (!why.empty()) throw Error(mark(where, v), cat("model: '", key, "' ", why));
  NA_CHECK(x > 0, mark(where, v), "model: '", key, "' must be > 0, got ", x);
  return x;
}

// model.<key>: a map of defaults for every <key> block, with only `valid` keys (null if absent).
// The values are checked by the blocks that use them, which name this position.
YAML::Node defaults(const YAML::Node& model, const std::string& key, std::initializer_list<const char*> valid,
                    const std::string& example, const std::string& where) {
  YAML::Node d = model[key];
  if (!d) return YAML::Node();
  NA_CHECK(d.IsMap(), mark(where, d), "model: '", key, "' is a map of defaults for ", key, " blocks, e.g. ", example);
  std::string names;
  for (const char* v : valid) names += (names.empty() ? "" : ", ") + std::string(v);
  for (const auto& kv : d) {
    const std::string k = kv.first.Scalar();
    bool ok = false;
    for (const char* v : valid) ok = ok || k == v;
    NA_CHECK(ok, mark(where, kv.first), "model.", key, ": unknown key '", k, "'; valid keys: ", names);
  }
  return d;
}
}  // namespace

Model::Model(const YAML::Node& node, const std::string& where, int64_t vocab,
             const PluginRegistry& plugins, uint64_t seed) {
  NA_CHECK(node && node.IsMap(), where, "model: expected a map with d_model, max_len, blocks, ...");
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    NA_CHECK(key == "d_model" || key == "vocab" || key == "max_len" || key == "causal" || key == "blocks" ||
                 key == "init" || key == "attention" || key == "feed_forward" || key == "dropout",
             mark(where, kv.first), "model: unknown key '", key,
             "'; valid keys: d_model, vocab, max_len, causal, init, attention, feed_forward, dropout, blocks");
  }
  dims_.attention = defaults(node, "attention", {"plugin", "n_heads", "options"},
                             "{plugin: linear, n_heads: 4, options: {feature_map: elu}}", where);
  dims_.feed_forward = defaults(node, "feed_forward", {"mult", "hidden", "chunks"}, "{hidden: 512, chunks: 1}", where);
  if (YAML::Node f = dims_.feed_forward; f && f["mult"] && f["hidden"])
    throw Error(mark(where, f["hidden"]), "model.feed_forward: give either mult (hidden = mult x d_model) or "
                                          "hidden (the width itself), not both");
  dims_.dropout = defaults(node, "dropout", {"p"}, "{p: 0.1}", where);
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
  NA_CHECK(node["blocks"], mark(where, node), "model: 'blocks' is required: a list of {block_type: {options}} items");
  store_.set_seed(seed);
  const InitScheme init = parse_init_scheme(node["init"], where);
  blocks_ = build_blocks(node["blocks"], "", where, dims_, store_, plugins);
  apply_init_scheme(init, store_);  // GPT-2: std for matrices, residual outputs scaled by depth
}

Var Model::forward(std::span<const int32_t> ids, int64_t B, int64_t T, const ForwardOptions& opt) const {
  NA_CHECK(static_cast<int64_t>(ids.size()) == B * T, "model", "got ", ids.size(), " ids for B = ", B,
           ", T = ", T);
  NA_CHECK(T <= dims_.max_len, "model", "sequence length ", T, " exceeds the model's max_len ", dims_.max_len);
  BlockInput in{ids, B, T, opt};
  return run_blocks(blocks_, Var(), in);
}

std::string Model::recurrent_unsupported() const {
  if (!dims_.causal)
    return "the model is bidirectional (causal: false): an RNN sees only the tokens so far";
  return na::recurrent_unsupported(blocks_, /*kv_cache_ok=*/false);
}

std::string Model::generation_unsupported() const {
  if (!dims_.causal)
    return "the model is bidirectional (causal: false): generation sees only the tokens so far";
  return na::recurrent_unsupported(blocks_, /*kv_cache_ok=*/true);
}

ModelAnatomy Model::anatomy() const {
  ModelAnatomy a;
  describe_blocks(blocks_, a);
  return a;
}

std::unique_ptr<RecurrentState> Model::begin_recurrent(int64_t batch) const {
  const std::string why = recurrent_unsupported();
  NA_CHECK(why.empty(), "model", "cannot run token by token: ", why);
  NA_CHECK(batch >= 1, "model", "begin_recurrent: batch must be >= 1, got ", batch);
  auto state = std::make_unique<RecurrentState>(batch);
  init_states(blocks_, *state);
  return state;
}

std::unique_ptr<RecurrentState> Model::begin_generation(int64_t batch) const {
  const std::string why = generation_unsupported();
  NA_CHECK(why.empty(), "model", "cannot generate token by token: ", why);
  NA_CHECK(batch >= 1, "model", "begin_generation: batch must be >= 1, got ", batch);
  auto state = std::make_unique<RecurrentState>(batch);
  init_states(blocks_, *state);
  return state;
}

Var Model::step(std::span<const int32_t> ids, RecurrentState& state) const {
  NA_CHECK(static_cast<int64_t>(ids.size()) == state.batch(), "model", "step: got ", ids.size(),
           " ids for a state of batch ", state.batch(), " (one next token per sequence)");
  NoGrad no_grad;  // the RNN forms are not differentiated (e.g. attention updates S in place)
  BlockInput in{ids, state.batch(), 1, ForwardOptions{}, state.pos(), &state};
  state.begin_step();
  try {
    Var logits = run_blocks(blocks_, Var(), in);
    state.end_step();
    return logits;
  } catch (...) {
    state.fail();
    throw;
  }
}

}  // namespace na
