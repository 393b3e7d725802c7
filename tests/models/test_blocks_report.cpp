// The parameter report (models/param_report.h): groups from the creating block's type, the S
// model's exact total (834,432, as ../shared/reference/README.md and charlm.py count it),
// shared and tied weights counted once, and the text table.
#include <doctest/doctest.h>

#include <sstream>
#include <string>

#include "model.h"
#include "param_report.h"
#include "plugin_loader.h"

using namespace na;

namespace {

const PluginRegistry& plugins() {
  static PluginRegistry reg;
  return reg;
}

// The S model; `head` and `repeat` vary it.
std::string s_model(const std::string& head = "{tied_to: tok.weight}", const std::string& repeat = "n: 4") {
  return R"(d_model: 128
max_len: 256
blocks:
  - token_embedding: {name: tok}
  - positional: {kind: learned, name: pos}
  - repeat:
      name: blocks
      )" + repeat + R"(
      blocks:
        - residual: {norm: layernorm, norm_name: ln1, body: [{attention: {name: attn, plugin: softmax, n_heads: 4}}]}
        - residual: {norm: layernorm, norm_name: ln2, body: [{feed_forward: {mult: 4, name: ""}}]}
  - layernorm: {name: ln_f}
  - lm_head: )" + head + "\n";
}

struct Expect {
  std::string group;
  int64_t tensors, scalars;
};

void check_breakdown(const ParamStore& store, const std::vector<Expect>& want) {
  const std::vector<ParamGroup> got = param_breakdown(store);
  REQUIRE(got.size() == want.size());
  int64_t total = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("group ", i, ": ", got[i].group);
    CHECK(got[i].group == want[i].group);
    CHECK(got[i].tensors == want[i].tensors);
    CHECK(got[i].scalars == want[i].scalars);
    total += got[i].scalars;
  }
  CHECK(total == store.count());
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace

TEST_CASE("param report: the S model has 834,432 parameters, by group") {
  Model m(YAML::Load(s_model()), "exp.yaml", 65, plugins(), 1);
  CHECK(m.params().count() == 834432);
  // embeddings: tok 65*128 + pos 256*128; per layer: qkv 128*384 + 384, proj 128*128 + 128,
  // fc 128*512 + 512, fc_out 512*128 + 128, ln1 and ln2 2*128 each; ln_f 2*128. The head is
  // tied: no parameter of its own.
  check_breakdown(m.params(), {{"embeddings", 2, 41088},
                               {"attention", 16, 264192},
                               {"feed-forward", 16, 526848},
                               {"norms", 18, 2304}});
  CHECK(m.params().group(m.params().get("blocks.0.ln1.weight")) == "norms");  // a residual's own norm
  CHECK(m.params().group(m.params().get("pos.weight")) == "embeddings");
}

TEST_CASE("param report: an untied head is its own group; shared layers count once") {
  Model untied(YAML::Load(s_model("{}")), "exp.yaml", 65, plugins(), 1);
  check_breakdown(untied.params(), {{"embeddings", 2, 41088},
                                    {"attention", 16, 264192},
                                    {"feed-forward", 16, 526848},
                                    {"norms", 18, 2304},
                                    {"head", 1, 65 * 128}});
  Model shared(YAML::Load(s_model("{tied_to: tok.weight}", "n: 4\n      share: true")), "exp.yaml", 65,
               plugins(), 1);
  check_breakdown(shared.params(), {{"embeddings", 2, 41088},
                                    {"attention", 4, 264192 / 4},
                                    {"feed-forward", 4, 526848 / 4},
                                    {"norms", 6, 4 * 128 + 256}});
}

TEST_CASE("param report: blocks of other types, and parameters made outside any block, are 'other'") {
  ParamStore store;
  store.create("loose", {3, 2}, Init::zeros());
  store.enter_block("some_new_block");
  store.create("new.weight", {4}, Init::ones());
  store.enter_block("rmsnorm");  // nested: the innermost block owns what is created
  store.create("new.norm.weight", {4}, Init::ones());
  store.leave_block();
  store.create("new.bias", {4}, Init::zeros());
  store.leave_block();
  check_breakdown(store, {{"norms", 1, 4}, {"other", 3, 14}});
  CHECK(store.blocks_built("rmsnorm") == 1);
  CHECK(param_group("causal_conv") == "other");
}

TEST_CASE("param report: an aligned table with a total line, and per tensor") {
  Model m(YAML::Load(s_model()), "exp.yaml", 65, plugins(), 1);
  const std::string table = format_param_table(m.params(), false);
  INFO(table);
  const std::vector<std::string> l = lines(table);
  REQUIRE(l.size() == 6);  // header, 4 groups, total
  CHECK(l[0] == "group         tensors   params       %");
  CHECK(l[1] == "embeddings          2   41,088    4.92");
  CHECK(l[2] == "attention          16  264,192   31.66");
  CHECK(l[3] == "feed-forward       16  526,848   63.14");
  CHECK(l[4] == "norms              18    2,304    0.28");
  CHECK(l[5] == "total              52  834,432  100.00");

  const std::string detail = format_param_table(m.params(), true);
  const std::vector<std::string> d = lines(detail);
  REQUIRE(d.size() == 1 + 52 + 1 + 6);  // header, a line per tensor, blank, the table
  CHECK(d[0].rfind("parameter", 0) == 0);
  CHECK(d[1] == "tok.weight                 (65, 128)    8,320  embeddings");
  CHECK(d[52] == "ln_f.bias                  (128,)         128  norms");
  CHECK(detail.substr(detail.size() - table.size()) == table);
}
