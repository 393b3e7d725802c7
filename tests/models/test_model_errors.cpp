// Bad model YAML: every error names the file position (file:line:col) and what would be
// valid. Malformed YAML never reaches the builder (YAML::Load throws, with the position);
// YAML that parses but is not a model does, at every depth of repeat -> residual -> body.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

#include "experiment/experiment.h"
#include "model.h"
#include "plugin_loader.h"

using namespace na;
namespace fs = std::filesystem;

namespace {

// The build's plugin folder (next to libnanoattn), as the CLI finds it.
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

// A model of d_model 8 whose block list is `blocks` (written from line 4 on).
std::string with_blocks(const std::string& blocks) { return "d_model: 8\nmax_len: 4\nblocks:\n" + blocks; }

// The error of `yaml` contains every one of `parts`.
void check_error(const std::string& yaml, std::initializer_list<const char*> parts) {
  const std::string e = error_of(yaml);
  INFO("yaml:\n", yaml, "\nerror: ", e);
  for (const char* p : parts) {
    INFO("expected to contain: ", std::string(p));
    CHECK(e.find(p) != std::string::npos);
  }
}

// Three levels down: repeat -> residual -> body -> attention.
std::string deep_attention(const std::string& attention_options) {
  return with_blocks(R"(  - repeat:
      n: 2
      blocks:
        - residual:
            body:
              - attention: )" + attention_options + "\n");
}

}  // namespace

TEST_CASE("model errors: malformed YAML fails in the parser, with line and column") {
  // The builder takes parsed nodes; the experiment loader turns this exception into
  // "exp.yaml:<line>:<col>: malformed YAML: <msg>".
  const char* bad = "d_model: 8\nmax_len: 4\nblocks:\n  - token_embedding: {name: tok\n  - lm_head: {}\n";
  bool threw = false;
  try {
    YAML::Load(bad);
  } catch (const YAML::ParserException& e) {
    threw = true;
    CHECK(e.mark.line + 1 == 5);  // where the parser noticed the unclosed '{'
    CHECK(e.msg == "end of map flow not found");
  }
  CHECK(threw);
  // YAML that parses but is not a block list.
  check_error(with_blocks("  - token_embedding {}\n"),
              {"exp.yaml:4:5: each block is a one-key map {block_type: {options}}, e.g. - layernorm: {name: ln_f}"});
  check_error(with_blocks("  - token_embedding: {}\n    lm_head: {}\n"), {"exp.yaml:4:5: each block is a one-key map"});
  check_error("d_model: 8\nmax_len: 4\nblocks: {token_embedding: {}}\n",
              {"exp.yaml:3:9: 'blocks' must be a list of {block_type: {options}} items"});
  check_error(with_blocks("  - layernorm: [1, 2]\n"),
              {"exp.yaml:4:16: block 'layernorm' takes a map of options, e.g. {layernorm: {name: x}}"});
  check_error("d_model: 8\nmax_len: 4\n", {"exp.yaml:1:1: model: 'blocks' is required: a list of {block_type: {options}} items"});
}

TEST_CASE("model errors: unknown keys three levels down name their position and the valid keys") {
  check_error(deep_attention("{plugin: linear, n_heads: 2, options: {feature_mapp: elu}}"),
              {"exp.yaml:9:67: plugin 'linear' has no option 'feature_mapp'. Valid options:", "feature_map (string"});
  check_error(deep_attention("{plugin: linear, n_head: 2}"),
              {"exp.yaml:9:45: block 'attention' has no option 'n_head'; valid options: ", "n_heads", "plugin"});
  check_error(with_blocks("  - repeat: {n: 2, blocks: [{residual: {norm_nam: ln, body: []}}]}\n"),
              {"exp.yaml:4:41: block 'residual' has no option 'norm_nam'; valid options: ", "norm_name", "post_norm"});
  check_error("d_model: 8\nmax_len: 4\nlayers: 3\nblocks: []\n",
              {"exp.yaml:3:1: model: unknown key 'layers'; valid keys: d_model, vocab, max_len, causal, init, attention, feed_forward, dropout, blocks"});
}

TEST_CASE("model errors: a value of the wrong type says what type is wanted") {
  check_error(deep_attention("{plugin: softmax, n_heads: \"four\"}"),
              {"exp.yaml:9:55: block 'attention': option 'n_heads' must be an integer, got 'four'"});
  check_error(with_blocks("  - feed_forward: {mult: 2.5}\n"),
              {"exp.yaml:4:26: block 'feed_forward': option 'mult' must be an integer, got '2.5'"});
  check_error(with_blocks("  - residual: {post_norm: sometimes, body: []}\n"),
              {"exp.yaml:4:27: block 'residual': option 'post_norm' must be true or false, got 'sometimes'"});
  check_error(with_blocks("  - layernorm: {eps: tiny}\n"),
              {"exp.yaml:4:22: block 'layernorm': option 'eps' must be a number, got 'tiny'"});
  check_error(with_blocks("  - attention: {plugin: [softmax]}\n"),
              {"exp.yaml:4:25: block 'attention': option 'plugin' must be a single value, got 'a map or list'"});
  check_error("d_model: big\nmax_len: 4\nblocks: []\n", {"exp.yaml:1:10: model: 'd_model' must be an integer, got 'big'"});
}

TEST_CASE("model errors: zero and negative sizes") {
  check_error("d_model: 0\nmax_len: 4\nblocks: []\n", {"exp.yaml:1:10: model: 'd_model' must be > 0, got 0"});
  check_error("d_model: -8\nmax_len: 4\nblocks: []\n", {"exp.yaml:1:10: model: 'd_model' must be > 0, got -8"});
  check_error("d_model: 8\nmax_len: 0\nblocks: []\n", {"exp.yaml:2:10: model: 'max_len' must be > 0, got 0"});
  check_error(with_blocks("  - feed_forward: {mult: 0}\n"), {"exp.yaml:4:19: feed_forward: mult must be > 0, got 0"});
  check_error(with_blocks("  - feed_forward: {mult: -1}\n"), {"exp.yaml:4:19: feed_forward: mult must be > 0, got -1"});
  check_error(with_blocks("  - feed_forward: {chunks: 0}\n"),
              {"exp.yaml:4:19: feed_forward: chunks must be >= 1 (1 = not chunked), got 0"});
  check_error(with_blocks("  - feed_forward: {chunks: -2}\n"),
              {"exp.yaml:4:19: feed_forward: chunks must be >= 1 (1 = not chunked), got -2"});
  check_error(with_blocks("  - token_embedding: {factor_dim: -1}\n"),
              {"exp.yaml:4:22: token_embedding: factor_dim must be >= 0 (0 = a plain (V, C) table), got -1"});
  check_error(with_blocks("  - repeat: {n: 0, blocks: []}\n"), {"exp.yaml:4:13: repeat: n must be > 0, got 0"});
  check_error(with_blocks("  - attention: {n_heads: 0}\n"), {"exp.yaml:4:16: attention: n_heads 0 must be > 0"});
}

TEST_CASE("model errors: n_heads must divide d_model") {
  check_error(deep_attention("{plugin: softmax, n_heads: 3}"),
              {"exp.yaml:9:28: attention: n_heads 3 must be > 0 and divide d_model 8"});
}

TEST_CASE("model errors: unknown block and unknown plugin list what exists") {
  check_error(deep_attention("{plugin: softmax}\n              - feedforward: {}"),
              {"exp.yaml:10:17: unknown block 'feedforward'; known blocks: ", "attention", "feed_forward",
               "token_embedding"});
  // The plugin loader does not know the YAML; the block adds its position.
  const std::string dir = bundled_plugin_dir();
  REQUIRE_FALSE(dir.empty());
  check_error(deep_attention("{plugin: sofmax, n_heads: 2}"),
              {"exp.yaml:9:28: block 'attention': plugins: no attention plugin named 'sofmax'. Available: ",
               "linear, ", "softmax", ". Searched: ",
               dir.c_str()});
}

TEST_CASE("model errors: two blocks that would make the same parameter name") {
  check_error(with_blocks("  - token_embedding: {}\n  - token_embedding: {}\n"),
              {"exp.yaml:5:22: block 'token_embedding': model: two parameters are named 'tok.weight': give one of "
               "the blocks another `name`"});
}

TEST_CASE("a plugin option set by a run's override or by --set is reported there, not at the model's defaults") {
  const std::string dir = (fs::temp_directory_path() / ("na_opt_lines_" + std::to_string(::getpid()))).string();
  fs::create_directories(dir);
  std::ofstream(dir + "/tiny.txt") << "the cat sat on the mat. the dog ran.\n";
  const std::string path = dir + "/exp.yaml";
  std::ofstream(path) << R"(data: {corpus: tiny.txt, val_fraction: 0.2, test_fraction: 0.2}
model:
  d_model: 16
  max_len: 8
  attention: {plugin: linear, n_heads: 2, options: {feature_map: dpfp, nu: 1}}
  blocks:
    - token_embedding: {}
    - attention: {}
    - lm_head: {}
train: {steps: 4, batch_size: 2, seq_len: 8, warmup: 0}
runs:
  - name: ok
  - {name: x, model: {attention: {options: {nu: 0}}}}
)";
  auto error_of = [&](const std::vector<std::string>& sets, const std::string& run) {
    const Experiment e = load_experiment(path, sets);
    const PluginRegistry plugins;
    for (const RunConfig& r : e.runs) {
      if (r.name != run) continue;
      try {
        Model m(r.model, r.where, 20, plugins, r.seed);
      } catch (const Error& err) {
        return std::string(err.what());
      }
    }
    return std::string();
  };
  CHECK(error_of({}, "ok") == "");
  const std::string run_line = error_of({}, "x");
  CHECK(run_line.rfind(path + ":13:", 0) == 0);  // the run's line, not line 5 or the block's line 8
  CHECK(run_line.find("option 'nu'") != std::string::npos);
  const std::string set = error_of({"model.attention.options.nu=0"}, "ok");
  CHECK(set.rfind(path + ": --set: ", 0) == 0);
  CHECK(set.find("option 'nu'") != std::string::npos);
  const std::string bad_choice = error_of({"model.attention.options.feature_map=cosine"}, "ok");
  CHECK(bad_choice.rfind(path + ": --set: option 'feature_map' of plugin 'linear' must be one of", 0) == 0);
  fs::remove_all(dir);
}
