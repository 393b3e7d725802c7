// Model-level defaults for feed_forward and dropout blocks (model.feed_forward, model.dropout):
// they apply to blocks that do not set the option, a block's own option wins, and every bad key
// or value names its file position.
#include <doctest/doctest.h>

#include <string>

#include "model.h"
#include "plugin_loader.h"

using namespace na;

namespace {

const PluginRegistry& plugins() {
  static PluginRegistry reg;
  return reg;
}

// d_model 8, the model-level lines `model_lines` (each ending in a newline, from line 3 on),
// then one feed_forward block with options `ffn` and a dropout block with options `drop`.
std::string model_yaml(const std::string& model_lines, const std::string& ffn, const std::string& drop = "{}") {
  return "d_model: 8\nmax_len: 4\n" + model_lines +
         "blocks:\n"
         "  - token_embedding: {}\n"
         "  - feed_forward: " + ffn + "\n"
         "  - dropout: " + drop + "\n"
         "  - lm_head: {tied_to: tok}\n";
}

// The hidden width of the feed-forward block: rows of fc.weight.
int64_t hidden_of(const std::string& yaml) {
  Model m(YAML::Load(yaml), "exp.yaml", 5, plugins(), 1);
  return m.params().get("fc.weight").value().dim(0);
}

std::string error_of(const std::string& yaml) {
  try {
    Model m(YAML::Load(yaml), "exp.yaml", 5, plugins(), 1);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void check_error(const std::string& yaml, std::initializer_list<const char*> parts) {
  const std::string e = error_of(yaml);
  INFO("yaml:\n", yaml, "\nerror: ", e);
  for (const char* p : parts) {
    INFO("expected to contain: ", std::string(p));
    CHECK(e.find(p) != std::string::npos);
  }
}

// Whether the training forward differs from the evaluation forward (dropout active).
bool dropout_active(const std::string& yaml) {
  Model m(YAML::Load(yaml), "exp.yaml", 5, plugins(), 1);
  const std::vector<int32_t> ids = {0, 1, 2, 3, 4, 3, 2, 1};
  ForwardOptions train;
  train.training = true;
  train.dropout_key = 99;
  const Tensor eval = m.forward(ids, 2, 4).value().clone();
  const Tensor trained = m.forward(ids, 2, 4, train).value().clone();
  tape().reset();
  for (int64_t i = 0; i < eval.numel(); ++i)
    if (eval.data()[i] != trained.data()[i]) return true;
  return false;
}

}  // namespace

TEST_CASE("model.feed_forward: hidden or mult apply to every feed_forward block that sets neither") {
  CHECK(hidden_of(model_yaml("", "{}")) == 32);  // built-in mult 4 x d_model 8
  CHECK(hidden_of(model_yaml("feed_forward: {hidden: 24}\n", "{}")) == 24);
  CHECK(hidden_of(model_yaml("feed_forward: {mult: 3}\n", "{}")) == 24);
}

TEST_CASE("model.feed_forward: a block's own mult or hidden replaces the default's width") {
  CHECK(hidden_of(model_yaml("feed_forward: {hidden: 24}\n", "{mult: 2}")) == 16);
  CHECK(hidden_of(model_yaml("feed_forward: {mult: 3}\n", "{hidden: 10}")) == 10);
  CHECK(hidden_of(model_yaml("feed_forward: {hidden: 24}\n", "{hidden: 6}")) == 6);
  // chunks from the default is still read (and checked) when the block sets its width
  check_error(model_yaml("feed_forward: {chunks: 0}\n", "{mult: 2}"), {"feed_forward: chunks must be >= 1"});
}

TEST_CASE("feed_forward: mult and hidden in the same place is an error naming both") {
  check_error(model_yaml("", "{mult: 2, hidden: 10}"), {"exp.yaml:5:", "mult", "hidden", "not both"});
  check_error(model_yaml("feed_forward: {mult: 2, hidden: 10}\n", "{}"),
              {"exp.yaml:3:", "model.feed_forward", "mult", "hidden", "not both"});
}

TEST_CASE("model.feed_forward and model.dropout: unknown keys and bad values name their position") {
  check_error(model_yaml("feed_forward: {mult: 2, width: 3}\n", "{}"),
              {"exp.yaml:3:25", "model.feed_forward: unknown key 'width'", "valid keys: mult, hidden, chunks"});
  check_error(model_yaml("dropout: {rate: 0.1}\n", "{}"),
              {"exp.yaml:3:11", "model.dropout: unknown key 'rate'", "valid keys: p"});
  check_error(model_yaml("feed_forward: [1, 2]\n", "{}"), {"exp.yaml:3:", "map of defaults for feed_forward"});
  // A default's bad value is reported at the default, not at the block that used it.
  check_error(model_yaml("feed_forward: {hidden: 2.5}\n", "{}"),
              {"exp.yaml:3:24", "model.feed_forward: 'hidden' must be an integer"});
  check_error(model_yaml("feed_forward: {hidden: 0}\n", "{}"), {"exp.yaml:3:24", "hidden must be > 0"});
  check_error(model_yaml("dropout: {p: 1.5}\n", "{}"), {"exp.yaml:3:14", "dropout: p must be in [0, 1)"});
  // The block-level form names the block and its valid options, hidden among them.
  check_error(model_yaml("", "{width: 3}"), {"exp.yaml:5:", "no option 'width'", "hidden", "mult", "chunks"});
}

TEST_CASE("model.dropout: p applies to every dropout block that does not set it; a block's p wins") {
  CHECK(dropout_active(model_yaml("", "{}")));                        // built-in p 0.1
  CHECK_FALSE(dropout_active(model_yaml("dropout: {p: 0.0}\n", "{}")));  // the default turns it off
  CHECK(dropout_active(model_yaml("dropout: {p: 0.0}\n", "{}", "{p: 0.5}")));
  CHECK_FALSE(dropout_active(model_yaml("dropout: {p: 0.5}\n", "{}", "{p: 0}")));
}
