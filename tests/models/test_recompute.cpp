// recompute: true (models/recompute.h): the same gradients, bit for bit, as without, at 1 and
// 2 threads; a finite-difference check through a recomputed block; less tape memory on a deep
// model; the same outputs in evaluation and recurrent mode; the YAML errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <regex>

#include "gradcheck.h"
#include "model.h"
#include "param_report.h"
#include "plugin_loader.h"
#include "recompute.h"
#include "scratch_tape.h"
#include "error_of.h"

using namespace na;
using na::testing::random_tensor;

namespace {

const PluginRegistry& plugins() {
  static PluginRegistry reg;
  return reg;
}

constexpr int64_t kC = 16, kVocab = 11, kT = 24, kB = 3;

// Every `R` becomes " true" or "false" (the same width: dropout masks are salted with their
// block's position in the file, which must not move). R0: the embedding residual's body,
// R1: the repeat, the others blocks inside it (nested). The feed_forward (ffn1) and the
// residual around ffn0 get an input that already holds a skip connection's gradient when their
// backward runs; the residual adds two more to it (its own skip and its body's), whose order
// matters to the last bit.
const char* kBlocks = R"(
- residual: {norm: none, body: [{token_embedding: {recompute: R}}]}
- positional: {kind: learned}
- repeat:
    n: 2
    recompute: R
    blocks:
      - residual: {norm_name: ln1, body: [{attention: {plugin: softmax, n_heads: 2}}], recompute: R}
      - residual: {norm: none, body: [{feed_forward: {name: ffn1, mult: 2, recompute: R}}, {dropout: {p: 0.3}}]}
      - residual: {norm: none, body: [{residual: {norm_name: ln0, body: [{feed_forward: {name: ffn0, mult: 2}}], recompute: R}}]}
      - residual: {norm_name: ln2, body: [{attention: {name: lin, plugin: linear, n_heads: 2, options: {feature_map: elu}}}], recompute: R}
      - residual: {norm_name: ln3, body: [{feed_forward: {mult: 2}}, {dropout: {p: 0.3}}], recompute: R}
- layernorm: {name: ln_f}
- lm_head: {tied_to: tok.weight}
)";

std::string with_recompute(const char* text, bool on) {
  return std::regex_replace(text, std::regex("recompute: R"), on ? "recompute:  true" : "recompute: false");
}

std::vector<int32_t> token_ids(uint64_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(kB * kT));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(Rng::mix(seed, i) % kVocab);
  return ids;
}

struct Grads {
  float loss = 0;
  std::vector<std::pair<std::string, Tensor>> params;
  Tensor input;
};

// One training step's gradients of the block list above applied to an input x (a leaf that
// wants a gradient) and the token ids, the loss a cross-entropy.
Grads block_list_grads(bool recompute) {
  ModelDims dims{kC, kVocab, kT, true, {}, {}, {}};
  ParamStore store;
  store.set_seed(5);
  auto blocks = build_blocks(YAML::Load(with_recompute(kBlocks, recompute)), "", "exp.yaml", dims, store, plugins());
  uint64_t seed = 100;  // order-one weights: the N(0, 0.02) init would make most gradients tiny
  for (Parameter* p : store.all()) p->value().copy_from(random_tensor(p->value().shape(), seed++, -0.3f, 0.3f));
  const std::vector<int32_t> ids = token_ids(7), targets = token_ids(8);
  BlockInput in;
  in.ids = ids;
  in.B = kB;
  in.T = kT;
  in.opt = {true, 1234};
  Var x = tape().leaf(random_tensor({kB, kT, kC}, 9), true);
  Var loss = cross_entropy(run_blocks(blocks, x, in), targets);
  tape().backward(loss);
  Grads g;
  g.loss = loss.value()[0];
  for (Parameter* p : store.all()) g.params.push_back({p->name(), p->grad().clone()});
  g.input = x.grad().clone();
  tape().reset();
  return g;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.data(), b.data(), a.numel() * sizeof(float)) == 0;
}

// A model (starting with an embedding, whose x is undefined) built from `blocks`.
std::unique_ptr<Model> make_model(const std::string& blocks, int64_t d_model = kC, int64_t max_len = kT) {
  return std::make_unique<Model>(YAML::Load(cat("d_model: ", d_model, "\nmax_len: ", max_len, "\nblocks:", blocks)),
                                 "exp.yaml", kVocab, plugins(), 11);
}

}  // namespace

TEST_CASE("recompute: the gradients of every parameter and of the input are bitwise those without") {
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    set_num_threads(threads);
    const Grads want = block_list_grads(false), got = block_list_grads(true);
    CHECK(std::memcmp(&want.loss, &got.loss, sizeof(float)) == 0);
    REQUIRE(want.params.size() == got.params.size());
    for (size_t i = 0; i < want.params.size(); ++i) {
      CAPTURE(want.params[i].first);
      CHECK(want.params[i].first == got.params[i].first);
      CHECK(same_bits(want.params[i].second, got.params[i].second));
    }
    CHECK(same_bits(want.input, got.input));
    // Not trivially equal: the input and the dropped-out blocks receive real gradients.
    double norm = 0;
    for (int64_t i = 0; i < got.input.numel(); ++i) norm += std::fabs(got.input[i]);
    CHECK(norm > 0);
  }
  set_num_threads(0);
}

TEST_CASE("recompute: a model whose first block (an embedding: no x) is recomputed trains bitwise the same") {
  const std::string blocks = R"(
  - token_embedding: {recompute: R}
  - residual: {norm_name: ln1, body: [{attention: {n_heads: 2}}, {dropout: {p: 0.2}}], recompute: R}
  - lm_head: {})";
  std::vector<std::vector<Tensor>> grads;
  for (bool on : {false, true}) {
    auto m = make_model(with_recompute(blocks.c_str(), on));
    const std::vector<int32_t> ids = token_ids(3), targets = token_ids(4);
    tape().backward(cross_entropy(m->forward(ids, kB, kT, {true, 99}), targets));
    grads.emplace_back();
    for (Parameter* p : m->params().all()) grads.back().push_back(p->grad().clone());
    tape().reset();
  }
  REQUIRE(grads[0].size() == grads[1].size());
  for (size_t i = 0; i < grads[0].size(); ++i) CHECK(same_bits(grads[0][i], grads[1][i]));
}

TEST_CASE("recompute: finite differences agree with the gradient through a recomputed block") {
  ModelDims dims{8, kVocab, 8, true, {}, {}, {}};
  ParamStore store;
  store.set_seed(2);
  // x + ffn(norm(x)) recomputed, then x feeds a second recomputed block: x's gradient arrives
  // both fresh and on top of another.
  auto blocks = build_blocks(YAML::Load(R"(
- residual: {norm_name: ln1, body: [{feed_forward: {mult: 2}}], recompute: true}
- residual: {norm: none, body: [{feed_forward: {name: ffn2, mult: 2, recompute: true}}]}
)"),
                             "", "exp.yaml", dims, store, plugins());
  uint64_t seed = 20;
  for (Parameter* p : store.all()) p->value().copy_from(random_tensor(p->value().shape(), seed++, -0.5f, 0.5f));
  BlockInput in;
  in.B = 2;
  in.T = 4;
  CHECK_GRADIENTS([&](const std::vector<Var>& v) { return run_blocks(blocks, v[0], in); },
                 {random_tensor({2, 4, 8}, 1)});
}

TEST_CASE("recompute: a deep model's step holds much less tape memory") {
  std::string layer = R"(
        - residual: {norm_name: ln1, body: [{attention: {n_heads: 4}}], recompute: R}
        - residual: {norm_name: ln2, body: [{feed_forward: {mult: 4}}], recompute: R})";
  const std::string blocks = "\n  - token_embedding: {}\n  - positional: {}\n  - repeat:\n      n: 8\n      blocks:" +
                             layer + "\n  - layernorm: {name: ln_f}\n  - lm_head: {}";
  double bytes[2];
  for (bool on : {false, true}) {
    auto m = make_model(with_recompute(blocks.c_str(), on), 64, 64);
    release_scratch_tapes();
    Tape t;  // fresh, so that only this step's memory counts
    TapeScope scope(t);
    std::vector<int32_t> ids(4 * 64), targets(4 * 64);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i % kVocab), targets[i] = int32_t((i * 7) % kVocab);
    tape().backward(cross_entropy(m->forward(ids, 4, 64, {true, 1}), targets));
    // The arena frees nothing within a step, so its use now is its peak; the scratch tapes'
    // peaks add up (a nested one is in use while its parent is).
    bytes[on] = double(t.arena().high_water() + scratch_tape_bytes());
    t.reset();
  }
  MESSAGE("tape bytes per step: ", bytes[0], " without recompute, ", bytes[1], " with");
  CHECK(bytes[1] < 0.6 * bytes[0]);
  release_scratch_tapes();
}

TEST_CASE("recompute: evaluation and recurrent mode give the same outputs as without") {
  const std::string blocks = R"(
  - token_embedding: {}
  - repeat:
      n: 2
      recompute: R
      blocks:
        - residual: {norm_name: ln1, body: [{attention: {plugin: linear, n_heads: 2}}], recompute: R}
        - residual: {norm_name: ln2, body: [{feed_forward: {mult: 2}}, {dropout: {p: 0.5}}], recompute: R}
  - lm_head: {})";
  const std::vector<int32_t> ids = token_ids(6);
  Tensor eval[2], train[2], step[2];
  for (bool on : {false, true}) {
    auto m = make_model(with_recompute(blocks.c_str(), on));
    {
      NoGrad no_grad;
      eval[on] = m->forward(ids, kB, kT).value().clone();
      tape().reset();
    }
    train[on] = m->forward(ids, kB, kT, {true, 5}).value().clone();  // with gradients, dropout on
    tape().reset();
    auto state = m->begin_recurrent(kB);
    std::vector<int32_t> first(kB);
    for (int64_t b = 0; b < kB; ++b) first[size_t(b)] = ids[size_t(b * kT)];
    step[on] = m->step(first, *state).value().clone();
    tape().reset();
  }
  CHECK(same_bits(eval[0], eval[1]));
  CHECK(same_bits(train[0], train[1]));
  CHECK(same_bits(step[0], step[1]));
}

TEST_CASE("recompute: names, reports and errors are those of the block without it") {
  const std::string plain = "\n  - token_embedding: {}\n  - feed_forward: {mult: 2}\n  - lm_head: {}";
  const std::string wrapped = "\n  - token_embedding: {}\n  - feed_forward: {mult: 2, recompute: true}\n  - lm_head: {}";
  auto a = make_model(plain), b = make_model(wrapped);
  REQUIRE(a->params().all().size() == b->params().all().size());
  for (size_t i = 0; i < a->params().all().size(); ++i)
    CHECK(a->params().all()[i]->name() == b->params().all()[i]->name());
  CHECK(a->anatomy().matmul_weights.size() == b->anatomy().matmul_weights.size());
  CHECK(format_param_table(a->params(), true) == format_param_table(b->params(), true));
  CHECK(make_model("\n  - token_embedding: {}\n  - feed_forward: {mult: 2, recompute: false}\n  - lm_head: {}")
            ->params().count() == a->params().count());

  // A typo: the same message, and the valid options do not list the generic key.
  const std::string typo = error_of([] { make_model("\n  - token_embedding: {}\n  - feed_forward: {mul: 2}"); });
  CHECK(typo == "exp.yaml:5:20: block 'feed_forward' has no option 'mul'; valid options: chunks, hidden, mult, name");
  CHECK(error_of([] { make_model("\n  - token_embedding: {}\n  - feed_forward: {mul: 2, recompute: true}"); }) == typo);

  CHECK(error_of([] { make_model("\n  - token_embedding: {}\n  - feed_forward: {recompute: maybe}"); }) ==
        "exp.yaml:5:31: block 'feed_forward': option 'recompute' must be true or false, got 'maybe'");
  CHECK(error_of([] { make_model("\n  - token_embedding: {}\n  - repeat: {n: 2, recompute: [1], blocks: []}"); }) ==
        "exp.yaml:5:31: block 'repeat': option 'recompute' must be true or false, got 'a map or list'");
  // Favor features redrawn at each forward cannot be recomputed.
  const std::string favor = error_of([] {
    make_model("\n  - token_embedding: {}\n  - attention: {plugin: linear, options: {feature_map: favor, redraw: true}, "
               "recompute: true}");
  });
  CHECK(favor.find("exp.yaml:5:16: recompute: true runs the block's forward again in the backward, but attn (plugin "
                   "'linear', feature_map: favor) draws new random") == 0);
}
