// The chunked feed-forward (feed_forward: {chunks: N}, models/chunked_ffn.h) against the
// composite linear -> gelu -> linear: outputs and every gradient, finite differences, thread
// invariance, chunk counts that do not divide the rows, and the tape memory it saves.
//
// Tolerances: chunked vs composite within 1e-5 of the largest |value| of the composite's output
// or of each gradient (the weight gradients are sums over chunks, taken in another order;
// measured <= 3.5e-7). Finite differences: gradcheck defaults (h 1e-2, atol 2e-3, rtol 1e-2) on
// inputs in [-1, 1), where the gradients are of order 1. Thread invariance: bitwise.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "chunked_ffn.h"
#include "gradcheck.h"
#include "model.h"
#include "nanoattn/ops.h"
#include "plugin_loader.h"

using namespace na;
using namespace na::testing;

namespace {

const PluginRegistry& plugins() {
  static PluginRegistry reg;
  return reg;
}

// Inputs x (rows, C), w1 (H, C), b1 (H), w2 (C, H), b2 (C).
std::vector<Tensor> ffn_inputs(const Shape& x, int64_t H, uint64_t seed) {
  const int64_t C = x[-1];
  return {random_tensor(x, seed), random_tensor({H, C}, seed + 1), random_tensor({H}, seed + 2),
          random_tensor({C, H}, seed + 3), random_tensor({C}, seed + 4)};
}

Fn composite() {
  return [](const std::vector<Var>& v) { return linear(gelu(linear(v[0], v[1], v[2])), v[3], v[4]); };
}
Fn chunked(int64_t chunks) {
  return [=](const std::vector<Var>& v) { return chunked_ffn(v[0], v[1], v[2], v[3], v[4], chunks); };
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

// f's output and its inputs' gradients, the backward seeded with a fixed random tensor.
struct Run {
  Tensor out;
  std::vector<Tensor> grads;
};
Run run(const Fn& f, const std::vector<Tensor>& inputs) {
  tape().reset();
  std::vector<Var> vars;
  for (const Tensor& t : inputs) vars.push_back(tape().leaf(t.clone(), true));
  Var out = f(vars);
  tape().backward(out, random_tensor(out.shape(), 99));
  Run r{out.value().clone(), {}};
  for (const Var& v : vars) r.grads.push_back(v.grad().clone());
  tape().reset();
  return r;
}

void check_agrees_with_composite(const Shape& x, int64_t H, int64_t chunks) {
  INFO("x ", x, ", H ", H, ", chunks ", chunks);
  const std::vector<Tensor> in = ffn_inputs(x, H, 7);
  const Run want = run(composite(), in), got = run(chunked(chunks), in);
  CHECK(rel_diff(got.out, want.out) <= 1e-5);
  const char* names[] = {"x", "w1", "b1", "w2", "b2"};
  for (size_t i = 0; i < in.size(); ++i) {
    INFO("gradient of ", names[i]);
    CHECK(max_abs(want.grads[i]) > 0);
    CHECK(rel_diff(got.grads[i], want.grads[i]) <= 1e-5);
  }
}

// Arena bytes one forward + backward of f takes (inputs are heap-allocated leaves).
size_t arena_bytes(const Fn& f, const std::vector<Tensor>& inputs, const Tensor& seed) {
  tape().reset();
  std::vector<Var> vars;
  for (const Tensor& t : inputs) vars.push_back(tape().leaf(t, true));
  const size_t before = tape().arena().bytes_in_use();
  Var out = f(vars);
  tape().backward(out, seed);
  const size_t used = tape().arena().bytes_in_use() - before;
  tape().reset();
  return used;
}

std::string ffn_model(int64_t chunks) {
  return cat(R"(d_model: 16
max_len: 8
blocks:
  - token_embedding: {}
  - repeat: {n: 2, blocks: [{residual: {body: [{feed_forward: {mult: 3, chunks: )",
             chunks, R"(}}]}}]}
  - layernorm: {name: ln_f}
  - lm_head: {tied_to: tok.weight}
)");
}

}  // namespace

TEST_CASE("chunked_ffn: equals the composite, whatever the chunk count (dividing the rows or not)") {
  check_agrees_with_composite({3, 7, 8}, 32, 1);
  check_agrees_with_composite({3, 7, 8}, 32, 3);    // 21 rows: chunks of 7
  check_agrees_with_composite({3, 7, 8}, 32, 4);    // 21 rows: 5, 5, 5, 6
  check_agrees_with_composite({3, 7, 8}, 32, 20);   // chunks of 1 and one of 2
  check_agrees_with_composite({3, 7, 8}, 32, 21);   // one row each
  check_agrees_with_composite({3, 7, 8}, 32, 500);  // more chunks than rows: one row each
  check_agrees_with_composite({2, 200, 48}, 192, 7);  // large enough for parallel gemm blocks
}

TEST_CASE("chunked_ffn: finite-difference gradients of every input") {
  CHECK_GRADIENTS(chunked(3), ffn_inputs({2, 5, 4}, 12, 21));  // 10 rows: 3, 3, 4
  CHECK_GRADIENTS(chunked(10), ffn_inputs({10, 3}, 6, 22));    // one row per chunk
}

TEST_CASE("chunked_ffn: inputs without gradients, and a bias-only gradient") {
  const std::vector<Tensor> in = ffn_inputs({6, 4}, 8, 31);
  // Only b2 wants a gradient: the hidden layer is not recomputed, db2 = column sums of dY.
  tape().reset();
  std::vector<Var> v;
  for (size_t i = 0; i < in.size(); ++i) v.push_back(tape().leaf(in[i], i == 4));
  Var out = chunked_ffn(v[0], v[1], v[2], v[3], v[4], 4);
  const Tensor seed = random_tensor(out.shape(), 5);
  tape().backward(out, seed);
  for (int64_t c = 0; c < 4; ++c) {
    double s = 0;
    for (int64_t r = 0; r < 6; ++r) s += seed[r * 4 + c];
    CHECK(v[4].grad()[c] == doctest::Approx(s).epsilon(1e-6));
  }
  CHECK_FALSE(v[0].has_grad());
  tape().reset();
  {
    NoGrad ng;  // no tape entry when nothing is differentiated
    const size_t entries = tape().entry_count();
    std::vector<Var> w;
    for (const Tensor& t : in) w.push_back(tape().leaf(t, true));
    chunked_ffn(w[0], w[1], w[2], w[3], w[4], 2);
    CHECK(tape().entry_count() == entries);
  }
  tape().reset();
}

TEST_CASE("chunked_ffn: bitwise the same for any thread count") {
  CHECK_THREAD_INVARIANT(chunked(3), ffn_inputs({1024, 64}, 256, 41));
}

TEST_CASE("chunked_ffn: shape and chunk-count errors") {
  const std::vector<Tensor> in = ffn_inputs({4, 8}, 16, 51);
  tape().reset();
  std::vector<Var> v;
  for (const Tensor& t : in) v.push_back(tape().leaf(t, true));
  CHECK_THROWS_WITH_AS(chunked_ffn(v[0], v[1], v[2], v[3], v[4], 0), "chunked_ffn: chunks must be >= 1, got 0",
                       Error);
  CHECK_THROWS_WITH_AS(chunked_ffn(v[0], v[3], v[2], v[1], v[4], 2),
                       doctest::Contains("shapes do not fit: x (4, 8), w1 (8, 16) (want (H, C))"), Error);
  tape().reset();
}

TEST_CASE("chunked_ffn: the tape keeps one chunk's hidden layer, not all of them") {
  const int64_t N = 512, C = 32, H = 128, chunks = 8, m = N / chunks;
  const std::vector<Tensor> in = ffn_inputs({N, C}, H, 61);
  const Tensor seed = random_tensor({N, C}, 62);
  const size_t whole = arena_bytes(composite(), in, seed);
  const size_t parts = arena_bytes(chunked(chunks), in, seed);
  // Both hold the output, its gradient and the input gradients (x, weights, biases); the
  // composite adds three (N, H) tensors (fc output, gelu output, and one gradient buffer: the
  // tape recycles the gelu output's gradient for the fc output's), the chunked function two
  // (N / chunks, H) buffers.
  const size_t io = sizeof(float) * (3 * N * C + 2 * H * C + H + C);
  const size_t hidden_whole = sizeof(float) * 3 * N * H, hidden_chunk = sizeof(float) * 2 * m * H;
  MESSAGE("arena bytes for forward + backward: composite ", whole, ", chunked (", chunks, " chunks) ", parts);
  CHECK(whole >= io + hidden_whole);
  CHECK(parts <= io + hidden_chunk + 4096);  // + closures and alignment
  CHECK(parts + (hidden_whole - hidden_chunk) <= whole + 4096);
}

TEST_CASE("feed_forward block: chunks > 1 gives the composite's logits and gradients") {
  std::vector<int32_t> ids(2 * 8);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7 + 3) % 11);
  auto logits_and_grads = [&](int64_t chunks) {
    Model m(YAML::Load(ffn_model(chunks)), "exp.yaml", 11, plugins(), 5);
    tape().reset();
    Var logits = m.forward(ids, 2, 8);
    tape().backward(cross_entropy(logits, ids));
    std::vector<Tensor> out = {logits.value().clone()};
    for (Parameter* p : m.params().all()) out.push_back(p->grad().clone());
    tape().reset();
    return out;
  };
  const std::vector<Tensor> want = logits_and_grads(1), got = logits_and_grads(5);  // 16 rows: 3, 3, 3, 3, 4
  REQUIRE(want.size() == got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO((i == 0 ? std::string("logits") : cat("gradient of parameter ", i - 1)));
    CHECK(max_abs(want[i]) > 0);
    CHECK(rel_diff(got[i], want[i]) <= 1e-5);
  }
}
