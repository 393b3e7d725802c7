// A whole model run as an RNN, token by token (Model::begin_recurrent / step): its logits must
// equal the parallel forward's, for every block and every linear feature map with an RNN form,
// in constant memory; a model that cannot run so says which block and plugin stop it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "gradcheck.h"
#include "model.h"
#include "plugin_loader.h"
#include "error_of.h"

using namespace na;

namespace {

const PluginRegistry& plugins() {
  static PluginRegistry reg;
  return reg;
}

constexpr int64_t kVocab = 20;

struct Variant {
  std::string positional = "learned";   // learned | sinusoidal | none
  std::string norm = "layernorm";       // the residuals' norm
  bool post_norm = false;
  bool share = false;                   // repeat share: true
  bool conv = false;                    // a causal_conv residual in each layer
  std::string ffn_options = "{mult: 2}";
  std::string plugin = "linear";
  std::string attn_options = "{feature_map: elu}";
  int64_t max_len = 16;
};

// d_model 32, 2 layers, 2 heads, tied head.
std::string model_yaml(const Variant& v) {
  const std::string res = cat("residual: {norm: ", v.norm, ", post_norm: ", v.post_norm ? "true" : "false");
  return cat("d_model: 32\nmax_len: ", v.max_len, "\nblocks:\n",
             "  - token_embedding: {}\n",
             "  - positional: {kind: ", v.positional, "}\n",
             "  - repeat:\n      n: 2\n      share: ", v.share ? "true" : "false", "\n      blocks:\n",
             v.conv ? "        - " + res + ", norm_name: ln0, body: [{causal_conv: {kernel: 3}}]}\n" : "",
             "        - ", res, ", norm_name: ln1, body: [{attention: {plugin: ", v.plugin,
             ", n_heads: 2, options: ", v.attn_options, "}}]}\n",
             "        - ", res, ", norm_name: ln2, body: [{feed_forward: ", v.ffn_options, "}, {dropout: {p: 0.5}}]}\n",
             "  - layernorm: {name: ln_f}\n",
             "  - lm_head: {tied_to: tok.weight}\n");
}

// Parameters of order one, the same for any max_len (drawn per name): with the N(0, 0.02)
// init, the attention's share of the logits would be small enough to hide a wrong state.
std::unique_ptr<Model> make_model(const Variant& v) {
  auto m = std::make_unique<Model>(YAML::Load(model_yaml(v)), "exp.yaml", kVocab, plugins(), 11);
  for (Parameter* p : m->params().all())
    p->value().copy_from(na::testing::random_tensor(p->value().shape(), stable_hash(p->name()), -0.3f, 0.3f));
  return m;
}

// B sequences of T tokens, a different one per row.
std::vector<int32_t> token_rows(int64_t B, int64_t T, uint64_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(B * T));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(Rng::mix(seed, i) % kVocab);
  return ids;
}

// Parallel logits (B, T, V), cloned out of the tape.
Tensor parallel_logits(const Model& m, const std::vector<int32_t>& ids, int64_t B, int64_t T) {
  NoGrad no_grad;
  Tensor out = m.forward(ids, B, T).value().clone();
  tape().reset();
  return out;
}

struct RecurrentRun {
  Tensor logits;                     // (B, T, V), gathered from the steps
  size_t bytes_after_1 = 0, bytes_after_T = 0, slots = 0;
};

RecurrentRun run_recurrent(const Model& m, const std::vector<int32_t>& ids, int64_t B, int64_t T) {
  RecurrentRun r;
  r.logits = Tensor::empty({B, T, kVocab});
  auto state = m.begin_recurrent(B);
  r.slots = state->slots();
  std::vector<int32_t> next(static_cast<size_t>(B));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t b = 0; b < B; ++b) next[static_cast<size_t>(b)] = ids[static_cast<size_t>(b * T + t)];
    Var y = m.step(next, *state);
    REQUIRE(y.shape() == Shape{B, 1, kVocab});
    for (int64_t b = 0; b < B; ++b)
      for (int64_t v = 0; v < kVocab; ++v) r.logits[(b * T + t) * kVocab + v] = y.value()[b * kVocab + v];
    tape().reset();  // after every token: the state lives outside the tape
    if (t == 0) r.bytes_after_1 = state->bytes();
  }
  r.bytes_after_T = state->bytes();
  CHECK(state->pos() == T);
  return r;
}

// max |a - b| / max |b|
double rel_diff(const Tensor& a, const Tensor& b) {
  double d = 0, ref = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    d = std::max(d, static_cast<double>(std::fabs(a[i] - b[i])));
    ref = std::max(ref, static_cast<double>(std::fabs(b[i])));
  }
  return d / ref;
}

// Runs the variant both ways on 3 different sequences of 16 tokens; returns the relative
// difference (checked by the caller) and checks the state's size.
double recurrent_vs_parallel(const Variant& v, RecurrentRun* out = nullptr) {
  auto m = make_model(v);
  CHECK(m->recurrent_unsupported() == "");
  const int64_t B = 3, T = 16;
  std::vector<int32_t> ids = token_rows(B, T, 5);
  Tensor want = parallel_logits(*m, ids, B, T);
  RecurrentRun r = run_recurrent(*m, ids, B, T);
  CHECK(r.bytes_after_1 > 0);
  CHECK(r.bytes_after_1 == r.bytes_after_T);
  if (out) *out = r;
  return rel_diff(r.logits, want);
}

}  // namespace

TEST_CASE("recurrent: token-by-token logits equal the parallel forward's, for every block kind") {
  struct Case {
    std::string what;
    Variant v;
  };
  std::vector<Case> cases = {
      {"layernorm, pre-norm, learned positions, elu", {}},
      {"rmsnorm, post-norm", {.norm = "rmsnorm", .post_norm = true}},
      {"repeat share: true", {.share = true}},
      {"a causal_conv block", {.conv = true}},
      {"sinusoidal positions", {.positional = "sinusoidal"}},
      {"no positions", {.positional = "none"}},
      {"chunked feed-forward", {.ffn_options = "{mult: 2, chunks: 2}"}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    double d = recurrent_vs_parallel(c.v);
    CAPTURE(d);
    CHECK(d <= 1e-5);
  }
}

TEST_CASE("recurrent: every linear feature map with an RNN form") {
  // The plugin declares `recurrent` for all of its feature maps.
  for (std::string options : {"{feature_map: relu}", "{feature_map: dpfp, nu: 2}",
                              "{feature_map: favor, features: 24}", "{feature_map: elu, key_dim: 24}",
                              "{feature_map: elu, normalize: false}"}) {
    CAPTURE(options);
    double d = recurrent_vs_parallel({.attn_options = options});
    CAPTURE(d);
    CHECK(d <= 1e-5);
  }
}

TEST_CASE("recurrent: the comparison sees the history (changing an early token changes later logits)") {
  // Guards the test above: if the state were ignored, only the current token would matter.
  auto m = make_model({});
  const int64_t B = 1, T = 8;
  std::vector<int32_t> ids = token_rows(B, T, 9), other = ids;
  other[0] = (other[0] + 1) % kVocab;
  RecurrentRun a = run_recurrent(*m, ids, B, T), b = run_recurrent(*m, other, B, T);
  double last = 0;
  for (int64_t v = 0; v < kVocab; ++v)
    last = std::max(last, static_cast<double>(std::fabs(a.logits[(T - 1) * kVocab + v] - b.logits[(T - 1) * kVocab + v])));
  CHECK(last > 1e-3);
}

TEST_CASE("recurrent: constant state size; one state per application, also with shared weights") {
  // elu: F = d_k = 16, Dv = 16; per layer B H (F Dv + F) floats.
  const size_t per_layer = 3 * 2 * (16 * 16 + 16) * sizeof(float);
  RecurrentRun r;
  recurrent_vs_parallel({}, &r);
  CHECK(r.slots == 2);
  CHECK(r.bytes_after_T == 2 * per_layer);
  recurrent_vs_parallel({.share = true}, &r);  // one set of weights, two applications
  CHECK(r.slots == 2);
  CHECK(r.bytes_after_T == 2 * per_layer);
  recurrent_vs_parallel({.conv = true}, &r);  // + a ring of kernel-1 = 2 inputs per layer
  CHECK(r.slots == 4);
  CHECK(r.bytes_after_T == 2 * per_layer + 2 * 3 * 2 * 32 * sizeof(float));
}

TEST_CASE("recurrent: sinusoidal positions run past max_len") {
  // Parameters do not depend on max_len, so a model with a longer max_len is the oracle.
  auto m = make_model({.positional = "sinusoidal", .max_len = 16});
  auto longer = make_model({.positional = "sinusoidal", .max_len = 40});
  const int64_t B = 2, T = 40;
  std::vector<int32_t> ids = token_rows(B, T, 7);
  double d = rel_diff(run_recurrent(*m, ids, B, T).logits, parallel_logits(*longer, ids, B, T));
  CAPTURE(d);
  CHECK(d <= 1e-5);
}

TEST_CASE("recurrent: learned positions end at max_len") {
  auto m = make_model({});
  auto state = m->begin_recurrent(1);
  std::vector<int32_t> id = {3};
  for (int t = 0; t < 16; ++t) {
    m->step(id, *state);
    tape().reset();
  }
  std::string e = error_of([&] { m->step(id, *state); });
  CHECK(e == "pos: learned positions end at max_len 16: cannot add position 16 (use kind: sinusoidal or none "
             "for unbounded positions, or a larger max_len)");
  e = error_of([&] { m->step(id, *state); });
  CHECK(e.find("an earlier step failed half-way") != std::string::npos);
  tape().reset();
}

TEST_CASE("recurrent: a model that cannot run token by token says which block and plugin") {
  auto m = make_model({.plugin = "softmax", .attn_options = "{}"});
  const std::string why =
      "blocks.0.attn uses plugin 'softmax', which has no RNN form (capabilities: causal, bidirectional, "
      "key_padding_mask, kv_cache)";
  CHECK(m->recurrent_unsupported() == why);
  CHECK(error_of([&] { m->begin_recurrent(2); }) == "model: cannot run token by token: " + why);

  auto shared = make_model({.share = true, .plugin = "softmax", .attn_options = "{}"});
  CHECK(shared->recurrent_unsupported().find("blocks.attn uses plugin 'softmax'") == 0);

  Model bidir(YAML::Load("d_model: 8\nmax_len: 4\ncausal: false\nblocks:\n  - token_embedding: {}\n"
                         "  - attention: {plugin: linear}\n  - lm_head: {}\n"),
              "exp.yaml", kVocab, plugins(), 1);
  CHECK(bidir.recurrent_unsupported().find("the model is bidirectional (causal: false)") == 0);
}

TEST_CASE("recurrent: steps record nothing on the tape, with or without NoGrad") {
  auto m = make_model({.conv = true});
  auto state = m->begin_recurrent(2);
  std::vector<int32_t> ids = {1, 2};
  tape().reset();
  size_t capacity = 0;
  for (int t = 0; t < 12; ++t) {
    if (t % 2) {
      NoGrad no_grad;
      m->step(ids, *state);
    } else {
      Var y = m->step(ids, *state);
      CHECK_FALSE(y.requires_grad());
    }
    CHECK(tape().entry_count() == 0);
    CHECK(tape().grad_enabled());
    tape().reset();
    if (t == 2) capacity = tape().arena().capacity();
    if (t > 2) CHECK(tape().arena().capacity() == capacity);  // no growth per token
  }
}

TEST_CASE("recurrent: wrong use is an error naming what to do") {
  auto m = make_model({}), other = make_model({.share = true});
  auto state = m->begin_recurrent(3);
  std::vector<int32_t> two = {1, 2}, three = {1, 2, 3};
  CHECK(error_of([&] { m->step(two, *state); }) ==
        "model: step: got 2 ids for a state of batch 3 (one next token per sequence)");
  CHECK(error_of([&] { m->begin_recurrent(0); }) == "model: begin_recurrent: batch must be >= 1, got 0");
  auto foreign = other->begin_recurrent(3);
  CHECK(error_of([&] { m->step(three, *foreign); }).find("made by another model's begin_recurrent") !=
        std::string::npos);
  tape().reset();
}

