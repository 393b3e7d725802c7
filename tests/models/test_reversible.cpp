// Reversible residual stacks (repeat: {reversible: true}, models/blocks/reversible.h): gradients
// equal the stored two-stream function's and finite differences, peak tape memory independent
// of depth, recurrent steps equal the parallel forward, and the YAML errors.
//
// Tolerances. Reversible vs stored (the same math with every activation kept, through
// StoreReversibleActivations): outputs bitwise equal (the forward does the same float ops);
// gradients within 1e-5 of the largest |value| of each reference gradient. The reconstruction
// x2 = y2 - G(y1), x1 = y1 - F(x2) is not exact in float: measured max 5.1e-7 with 2-3 layers,
// 1.7e-6 with 12 (its error accumulates downwards). Breaking reversible.cpp once each way gave:
// the dF/dx2 term dropped 0.58-0.84, the sign of dG/dy1 flipped 1.2-1.6, G's backward seeded
// with the other stream 0.50-0.89 (and the finite differences failed too); the scratch tape
// not reset per layer failed the memory test.
// Finite differences: gradcheck defaults (h 1e-2, atol 2e-3, rtol 1e-2) on the stack input, and
// the same rule on 4 elements of every parameter.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <thread>

#include "blocks/reversible.h"
#include "gradcheck.h"
#include "model.h"
#include "plugin_loader.h"
#include "scratch_tape.h"
#include "error_of.h"

using namespace na;
using namespace na::testing;

namespace {

const PluginRegistry& plugins() {
  static PluginRegistry reg;
  return reg;
}

constexpr int64_t kC = 16, kVocab = 20;

struct Stack {
  int64_t n = 2;
  bool reversible = true;
  std::string plugin = "softmax";
  std::string options = "{}";
  double dropout = 0.0;
  bool share = false;
};

// The repeat's option map: n layers of (attention F, feed-forward G).
std::string repeat_yaml(const Stack& s) {
  return cat("{n: ", s.n, ", share: ", s.share ? "true" : "false", ", reversible: ", s.reversible ? "true" : "false",
             ", blocks: [{residual: {norm_name: ln1, body: [{attention: {plugin: ", s.plugin,
             ", n_heads: 2, options: ", s.options, "}}]}}, {residual: {norm_name: ln2, body: [{feed_forward: "
             "{mult: 2}}, {dropout: {p: ", s.dropout, "}}]}}]}");
}

// One repeat block with its own parameters, of order one (drawn per name) so that every
// branch matters.
struct StackUnderTest {
  ModelDims dims{kC, kVocab, 16, true, {}, {}, {}};
  ParamStore store;
  std::vector<std::unique_ptr<Block>> blocks;

  explicit StackUnderTest(const Stack& s) {
    store.set_seed(3);
    blocks = build_blocks(YAML::Load("[{repeat: " + repeat_yaml(s) + "}]"), "", "exp.yaml", dims, store, plugins());
    for (Parameter* p : store.all())
      p->value().copy_from(random_tensor(p->value().shape(), stable_hash(p->name()), -0.5f, 0.5f));
  }
  Var run(const Var& x, bool training) const {
    BlockInput in;
    in.B = x.dim(0);
    in.T = x.dim(1);
    in.opt.training = training;
    in.opt.dropout_key = 77;
    return blocks[0]->forward(x, in);
  }
};

struct Run {
  Tensor out, dx;
  std::vector<Tensor> grads;  // every parameter's, in store order
};

// Training forward + backward seeded with `seed`; reversible unless `stored`.
Run train(StackUnderTest& s, const Tensor& x, const Tensor& seed, bool stored) {
  std::optional<StoreReversibleActivations> keep;
  if (stored) keep.emplace();
  for (Parameter* p : s.store.all()) p->zero_grad();
  Var xv = tape().leaf(x, true);
  Var y = s.run(xv, true);
  tape().backward(y, seed);
  Run r{y.value().clone(), xv.grad().clone(), {}};
  for (Parameter* p : s.store.all()) r.grads.push_back(p->grad().clone());
  tape().reset();
  return r;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(static_cast<double>(t[i])));
  return m;
}

// max |a - b| / max |b|
double rel_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double d = 0;
  for (int64_t i = 0; i < a.numel(); ++i) d = std::max(d, std::fabs(static_cast<double>(a[i]) - b[i]));
  const double m = max_abs(b);
  return m > 0 ? d / m : d;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  for (int64_t i = 0; i < a.numel(); ++i)
    if (a[i] != b[i]) return false;
  return a.shape() == b.shape();
}

// The largest relative gradient difference between the reversible and the stored stack.
double reversible_vs_stored(const Stack& st) {
  StackUnderTest s(st);
  const Tensor x = random_tensor({3, 7, kC}, 1), seed = random_tensor({3, 7, kC}, 2);
  Run rev = train(s, x, seed, false), ref = train(s, x, seed, true);
  CHECK(bitwise_equal(rev.out, ref.out));
  double worst = rel_diff(rev.dx, ref.dx);
  std::vector<Parameter*> params = s.store.all();
  for (size_t i = 0; i < params.size(); ++i) {
    CAPTURE(params[i]->name());
    CHECK(max_abs(ref.grads[i]) > 0);  // every parameter takes part
    worst = std::max(worst, rel_diff(rev.grads[i], ref.grads[i]));
  }
  return worst;
}

}  // namespace

TEST_CASE("reversible: gradients equal the stored two-stream function's") {
  struct Case {
    std::string what;
    Stack s;
  };
  for (const Case& c : std::vector<Case>{
           {"softmax, 3 layers", {.n = 3}},
           {"softmax, 12 layers (the reconstruction's error accumulates downwards)", {.n = 12}},
           {"softmax, dropout 0.3 (masks recomputed in the backward)", {.n = 3, .dropout = 0.3}},
           {"linear elu, 2 layers", {.plugin = "linear", .options = "{feature_map: elu}"}},
           {"share: true, 3 applications of one layer", {.n = 3, .share = true}},
       }) {
    CAPTURE(c.what);
    const double d = reversible_vs_stored(c.s);
    MESSAGE(c.what, ": max relative gradient difference ", d);
    CHECK(d <= 1e-5);
  }
}

TEST_CASE("reversible: finite differences through a stack, softmax and linear attention") {
  for (const Stack& st : {Stack{.plugin = "softmax"}, Stack{.plugin = "linear", .options = "{feature_map: elu}"}}) {
    CAPTURE(st.plugin);
    StackUnderTest s(st);
    // The stack input (the finite differences run under NoGrad: the stored path, whose
    // forward is bitwise the reversible one's).
    const GradCheckResult g =
        gradcheck([&](const std::vector<Var>& v) { return s.run(v[0], true); }, {random_tensor({2, 5, kC}, 4)});
    CAPTURE(g.report);
    CHECK(g.ok);

    // Samples of every parameter: L = sum(out * R) in double, the same 4-point difference.
    const Tensor x = random_tensor({2, 5, kC}, 4), R = random_tensor({2, 5, kC}, 5);
    const Run rev = train(s, x, R, false);
    auto loss = [&] {
      NoGrad no_grad;
      Var y = s.run(tape().leaf(x), true);
      double l = 0;
      for (int64_t i = 0; i < y.numel(); ++i) l += static_cast<double>(y.value()[i]) * R[i];
      tape().reset();
      return l;
    };
    const double h = 1e-2;
    std::vector<Parameter*> params = s.store.all();
    for (size_t k = 0; k < params.size(); ++k) {
      const Tensor& w = params[k]->value();
      double worst = 0;  // |num - ana| / allowed, over 4 elements spread over the tensor
      for (int64_t i = 0; i < w.numel(); i += std::max<int64_t>(1, w.numel() / 4)) {
        const float w0 = w[i];
        auto at = [&](double d) {
          w[i] = static_cast<float>(w0 + d);
          return loss();
        };
        const double num = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h);
        w[i] = w0;
        worst = std::max(worst, std::fabs(num - rev.grads[k][i]) / (2e-3 + 1e-2 * std::fabs(num)));
      }
      CAPTURE(params[k]->name());
      CHECK(worst <= 1.0);
    }
  }
}

namespace {

std::string model_yaml(int64_t n, bool reversible, const std::string& plugin = "softmax",
                       const std::string& options = "{}", int64_t d_model = 32, int64_t max_len = 64) {
  return cat("d_model: ", d_model, "\nmax_len: ", max_len, "\nblocks:\n  - token_embedding: {}\n",
             "  - positional: {kind: learned}\n  - repeat: ",
             repeat_yaml({.n = n, .reversible = reversible, .plugin = plugin, .options = options, .dropout = 0.1}),
             "\n  - layernorm: {name: ln_f}\n  - lm_head: {tied_to: tok.weight}\n");
}

std::vector<int32_t> token_rows(int64_t B, int64_t T, uint64_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(B * T));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(Rng::mix(seed, i) % kVocab);
  return ids;
}

struct Peak {
  size_t outer = 0, scratch = 0;
  size_t total() const { return outer + scratch; }
};

// Peak tape memory of two training steps (B 4, T 64), on a fresh thread so that its tapes (the
// thread's own and the scratch ones) start empty: the outer tape's bytes at the end of the
// backward (a bump arena: its high-water mark) plus the scratch tapes' arenas.
Peak peak_tape_bytes(int64_t n, bool reversible) {
  Peak p;
  std::thread([&] {
    Model m(YAML::Load(model_yaml(n, reversible)), "exp.yaml", kVocab, plugins(), 5);
    const int64_t B = 4, T = 64;
    const std::vector<int32_t> ids = token_rows(B, T, 1), targets = token_rows(B, T, 2);
    for (int step = 0; step < 2; ++step) {
      Var loss = cross_entropy(m.forward(ids, B, T, {.training = true, .dropout_key = 9}), targets);
      tape().backward(loss);
      p.outer = std::max(p.outer, tape().arena().bytes_in_use());
      tape().reset();
    }
    p.scratch = scratch_tape_capacity();
  }).join();
  return p;
}

}  // namespace

TEST_CASE("reversible: peak tape memory does not grow with depth") {
  const Peak rev2 = peak_tape_bytes(2, true), rev12 = peak_tape_bytes(12, true), plain12 = peak_tape_bytes(12, false);
  MESSAGE("peak tape bytes: reversible 2 layers ", rev2.total(), " (", rev2.scratch, " scratch), 12 layers ",
          rev12.total(), " (", rev12.scratch, " scratch); ordinary 12 layers ", plain12.total());
  CHECK(rev2.scratch > 0);
  CHECK(static_cast<double>(rev12.total()) <= 1.1 * static_cast<double>(rev2.total()));
  CHECK(static_cast<double>(plain12.total()) >= 3.0 * static_cast<double>(rev12.total()));
}

TEST_CASE("reversible: token-by-token steps equal the parallel forward (linear attention)") {
  Model m(YAML::Load(model_yaml(2, true, "linear", "{feature_map: elu}", 32, 16)), "exp.yaml", kVocab, plugins(), 11);
  for (Parameter* p : m.params().all())
    p->value().copy_from(random_tensor(p->value().shape(), stable_hash(p->name()), -0.3f, 0.3f));
  REQUIRE(m.recurrent_unsupported() == "");
  const int64_t B = 3, T = 16;
  const std::vector<int32_t> ids = token_rows(B, T, 5);
  Tensor want;
  {
    NoGrad no_grad;
    want = m.forward(ids, B, T).value().clone();
    tape().reset();
  }
  Tensor got = Tensor::empty({B, T, kVocab});
  auto state = m.begin_recurrent(B);
  CHECK(state->slots() == 2);  // one attention state per layer
  std::vector<int32_t> next(static_cast<size_t>(B));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t b = 0; b < B; ++b) next[static_cast<size_t>(b)] = ids[static_cast<size_t>(b * T + t)];
    Var y = m.step(next, *state);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t v = 0; v < kVocab; ++v) got[(b * T + t) * kVocab + v] = y.value()[b * kVocab + v];
    tape().reset();
  }
  const double d = rel_diff(got, want);
  CAPTURE(d);
  CHECK(d <= 1e-5);
}

TEST_CASE("reversible: the flag changes the function, not the parameters or the cost model") {
  Model rev(YAML::Load(model_yaml(2, true)), "exp.yaml", kVocab, plugins(), 5);
  Model plain(YAML::Load(model_yaml(2, false)), "exp.yaml", kVocab, plugins(), 5);
  std::vector<Parameter*> a = rev.params().all(), b = plain.params().all();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i]->name() == b[i]->name());
    CHECK(bitwise_equal(a[i]->value(), b[i]->value()));
  }
  const ModelAnatomy ra = rev.anatomy(), pa = plain.anatomy();
  REQUIRE(ra.matmul_weights.size() == pa.matmul_weights.size());
  for (size_t i = 0; i < ra.matmul_weights.size(); ++i)
    CHECK(ra.matmul_weights[i]->name() == pa.matmul_weights[i]->name());
  REQUIRE(ra.attention.size() == pa.attention.size());
  for (size_t i = 0; i < ra.attention.size(); ++i) CHECK(ra.attention[i].path == pa.attention[i].path);

  NoGrad no_grad;
  const std::vector<int32_t> ids = token_rows(2, 8, 3);
  const Tensor yr = rev.forward(ids, 2, 8).value().clone(), yp = plain.forward(ids, 2, 8).value().clone();
  tape().reset();
  CHECK(rel_diff(yr, yp) > 1e-3);
}

TEST_CASE("reversible: YAML errors name the block") {
  auto build = [](const std::string& items) {
    return error_of([&] {
      Model(YAML::Load("d_model: 16\nmax_len: 8\nblocks:\n"
                       "  - token_embedding: {}\n"
                       "  - repeat:\n"
                       "      n: 2\n"
                       "      reversible: true\n"
                       "      blocks:\n" + items +
                       "  - lm_head: {tied_to: tok.weight}\n"),
            "exp.yaml", kVocab, plugins(), 1);
    });
  };
  const std::string attn = "        - residual: {norm_name: ln1, body: [{attention: {n_heads: 2}}]}\n";
  std::string e = build(attn);
  CAPTURE(e);
  CHECK(e.find("exp.yaml:9:9") != std::string::npos);
  CHECK(e.find("pairs (F, G) of pre-norm residuals, got 1 block") != std::string::npos);

  e = build(attn + "        - feed_forward: {}\n");
  CAPTURE(e);
  CHECK(e.find("exp.yaml:10:11") != std::string::npos);
  CHECK(e.find("pre-norm residual blocks only") != std::string::npos);
  CHECK(e.find("'feed_forward'") != std::string::npos);

  e = build(attn + "        - residual: {norm_name: ln2, post_norm: true, body: [{feed_forward: {}}]}\n");
  CAPTURE(e);
  CHECK(e.find("exp.yaml:10:11") != std::string::npos);
  CHECK(e.find("post_norm: true") != std::string::npos);

  // The backward recomputes the forward: a plugin drawing anew on each forward is refused.
  e = build("        - residual: {norm_name: ln1, body: [{attention: {plugin: linear, n_heads: 2, options: "
            "{feature_map: favor, features: 8, redraw: true}}}]}\n"
            "        - residual: {norm_name: ln2, body: [{feed_forward: {}}]}\n");
  CAPTURE(e);
  CHECK(e.find("exp.yaml:6:7") != std::string::npos);
  CHECK(e.find("redraw: true") != std::string::npos);

  CHECK(build(attn + "        - residual: {norm_name: ln2, body: [{feed_forward: {}}]}\n") == "(no error)");
}
