// Generation token by token with KV caches (Model::begin_generation / step): a softmax model's
// cached logits equal the parallel forward's at every position, alone and mixed with an RNN
// attention; sampling draws the same tokens cached and uncached; the cache grows by one row per
// token; begin_recurrent keeps meaning "RNN in constant memory".
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "error_of.h"
#include "gradcheck.h"
#include "model.h"
#include "plugin_loader.h"
#include "train/sample.h"

using namespace na;

namespace {

const PluginRegistry& plugins() {
  static PluginRegistry reg;
  return reg;
}

constexpr int64_t kVocab = 20;

// d_model 32, 2 heads, tied head; layer i uses plugins[i].
std::string model_yaml(const std::vector<std::string>& layers, const std::string& positional, int64_t max_len) {
  std::string s = cat("d_model: 32\nmax_len: ", max_len, "\nblocks:\n  - token_embedding: {}\n",
                      "  - positional: {kind: ", positional, "}\n");
  for (size_t i = 0; i < layers.size(); ++i)
    s += cat("  - residual: {norm_name: ln", 2 * i, ", name: a", i, ", body: [{attention: {plugin: ", layers[i],
             ", n_heads: 2}}]}\n", "  - residual: {norm_name: ln", 2 * i + 1, ", name: f", i,
             ", body: [{feed_forward: {mult: 2}}]}\n");
  return s + "  - layernorm: {name: ln_f}\n  - lm_head: {tied_to: tok.weight}\n";
}

// Parameters of order one (drawn per name): with N(0, 0.02) the attention would barely move the
// logits, and a wrong cache could hide.
std::unique_ptr<Model> make_model(const std::vector<std::string>& layers, const std::string& positional = "learned",
                                  int64_t max_len = 24) {
  auto m = std::make_unique<Model>(YAML::Load(model_yaml(layers, positional, max_len)), "exp.yaml", kVocab,
                                   plugins(), 3);
  for (Parameter* p : m->params().all())
    p->value().copy_from(na::testing::random_tensor(p->value().shape(), stable_hash(p->name()), -0.3f, 0.3f));
  return m;
}

std::vector<int32_t> token_rows(int64_t B, int64_t T, uint64_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(B * T));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(Rng::mix(seed, i) % kVocab);
  return ids;
}

// max |cached - parallel| / max |parallel| over every position of B sequences of T tokens, and
// the state's bytes after each token.
struct Run {
  double rel = 0;
  std::vector<size_t> bytes;
};
Run cached_vs_parallel(const Model& m, int64_t B, int64_t T) {
  std::vector<int32_t> ids = token_rows(B, T, 5);
  NoGrad no_grad;
  Tensor want = m.forward(ids, B, T).value().clone();
  tape().reset();
  auto state = m.begin_generation(B);
  Run r;
  double d = 0, ref = 0;
  std::vector<int32_t> next(static_cast<size_t>(B));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t b = 0; b < B; ++b) next[b] = ids[b * T + t];
    Tensor y = m.step(next, *state).value();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t v = 0; v < kVocab; ++v) {
        const double w = want[(b * T + t) * kVocab + v];
        d = std::max(d, std::fabs(y[b * kVocab + v] - w));
        ref = std::max(ref, std::fabs(w));
      }
    tape().reset();
    r.bytes.push_back(state->bytes());
  }
  r.rel = d / ref;
  return r;
}

}  // namespace

TEST_CASE("generation: softmax KV-cache logits equal the parallel forward's at every position") {
  auto m = make_model({"softmax", "softmax"});
  CHECK(m->generation_unsupported() == "");
  Run r = cached_vs_parallel(*m, 3, 24);
  CAPTURE(r.rel);
  CHECK(r.rel <= 1e-5);
  // Per token: 2 layers x B 3 x H 2 x (dk 16 + dv 16) floats, and nothing else.
  const size_t per_token = 2 * 3 * 2 * 32 * sizeof(float);
  for (size_t t = 0; t < r.bytes.size(); ++t) CHECK(r.bytes[t] == (t + 1) * per_token);
}

TEST_CASE("generation: a model mixing a KV cache and an RNN, with sinusoidal positions") {
  auto m = make_model({"linear", "softmax"}, "sinusoidal");
  CHECK(m->recurrent_unsupported().find("a1.attn uses plugin 'softmax', which has no RNN form") == 0);
  CHECK(m->generation_unsupported() == "");
  Run r = cached_vs_parallel(*m, 2, 24);
  CAPTURE(r.rel);
  CHECK(r.rel <= 1e-5);
  // The linear layer's (S, z) is constant, the softmax layer's cache grows by B H 32 floats.
  const size_t grow = 2 * 2 * 32 * sizeof(float);
  CHECK(r.bytes[1] - r.bytes[0] == grow);
  CHECK(r.bytes[23] - r.bytes[0] == 23 * grow);
}

TEST_CASE("generation: the comparison sees the cache (changing the first token changes the last logits)") {
  auto m = make_model({"softmax"});
  auto last_logits = [&](int32_t first) {
    auto state = m->begin_generation(1);
    std::vector<float> out;
    for (int32_t id : {first, 4, 7, 1}) {
      Tensor y = m->step(std::vector<int32_t>{id}, *state).value();
      out.assign(y.data(), y.data() + kVocab);
      tape().reset();
    }
    return out;
  };
  std::vector<float> a = last_logits(2), b = last_logits(3);
  double d = 0;
  for (int64_t v = 0; v < kVocab; ++v) d = std::max(d, static_cast<double>(std::fabs(a[v] - b[v])));
  CHECK(d > 1e-3);
}

TEST_CASE("generation: sampling with the KV cache draws the tokens the uncached path draws") {
  for (const std::vector<std::string>& layers : {std::vector<std::string>{"softmax", "softmax"},
                                                 std::vector<std::string>{"softmax", "linear"}}) {
    CAPTURE(layers[1]);
    auto m = make_model(layers, "learned", 64);
    SampleOptions o;
    o.tokens = 60;  // prompt 3 + 60 < max_len 64: the parallel path sees the whole text too
    o.seed = 7;
    const std::vector<int32_t> prompt = {1, 5, 9};
    o.mode = EvalMode::Parallel;
    const std::vector<int32_t> uncached = sample(*m, prompt, o);
    o.mode = EvalMode::Recurrent;
    o.kv_cache = true;
    const std::vector<int32_t> cached = sample(*m, prompt, o);
    CHECK(cached == uncached);
    CHECK(std::set<int32_t>(cached.begin(), cached.end()).size() > 3);  // a real sample, not one token
    o.kv_cache = false;  // RNN only: softmax has none
    CHECK(error_of([&] { sample(*m, prompt, o); }).find("cannot run token by token") != std::string::npos);
  }
}

TEST_CASE("generation: begin_recurrent still refuses a KV cache; learned positions end at max_len") {
  auto m = make_model({"softmax"});
  CHECK(error_of([&] { m->begin_recurrent(1); }).find("model: cannot run token by token: a0.attn uses plugin "
                                                     "'softmax', which has no RNN form") == 0);
  CHECK(error_of([&] { m->begin_generation(0); }) == "model: begin_generation: batch must be >= 1, got 0");
  auto state = m->begin_generation(1);
  std::vector<int32_t> id = {3};
  for (int t = 0; t < 24; ++t) {
    m->step(id, *state);
    tape().reset();
  }
  CHECK(error_of([&] { m->step(id, *state); }) ==
        "pos: learned positions end at max_len 24: cannot add position 24 (use kind: sinusoidal or none for "
        "unbounded positions, or a larger max_len)");
  tape().reset();
}

TEST_CASE("generation: a plugin with neither form, and a bidirectional model, say why") {
  auto m = make_model({"softmax", "sparse"});
  CHECK(m->generation_unsupported().find("a1.attn uses plugin 'sparse', which has no token-by-token form "
                                         "(neither RNN nor KV cache)") == 0);
  CHECK(error_of([&] { m->begin_generation(1); }).find("model: cannot generate token by token: a1.attn") == 0);
  Model bidir(YAML::Load("d_model: 8\nmax_len: 4\ncausal: false\nblocks:\n  - token_embedding: {}\n"
                         "  - attention: {plugin: softmax}\n  - lm_head: {}\n"),
              "exp.yaml", kVocab, plugins(), 1);
  CHECK(bidir.generation_unsupported().find("the model is bidirectional (causal: false)") == 0);
}

TEST_CASE("generation: the softmax step refuses a state it did not make") {
  AttentionConfig c;
  c.d_model = 8;
  c.n_heads = 2;
  auto softmax = plugins().create("softmax", c), linear = plugins().create("linear", c);
  OwnedParams p = make_params(softmax->parameters(), 1);
  auto foreign = linear->init_state(1);
  NoGrad no_grad;
  CHECK(error_of([&] { softmax->step(*foreign, tape().leaf(Tensor::zeros({1, 8})), p.set); }) ==
        "softmax attention: attend_step: the state was not made by this attention's init_state");
  c.causal = false;
  CHECK(error_of([&] { plugins().create("softmax", c)->init_state(1); }).find("configured bidirectional") !=
        std::string::npos);
  tape().reset();
}
