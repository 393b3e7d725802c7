// The fused softmax attention kernel (plugins/softmax/softmax_kernel.cpp) against its composite
// of primitive ops, finite differences, exact causality and thread invariance.
//
// Tolerances:
//  - fused vs composite: outputs and gradients within 1e-5 of the largest |value| of the
//    composite's output / gradients. The two differ only by float32 rounding: the kernel's own
//    vectorised exp (within ~1 ulp of expf), normalising the output row instead of P, the
//    backward recomputing P = exp(s - lse), the softmax row term taken as rowsum(dO * O)
//    instead of a sum over keys, and dK / dV summed over rows in blocks. Measured worst
//    cases: outputs <= 3.6e-7, gradients <= 5e-7, and 2.1e-6 for the peaked case (scale 3).
//  - finite differences: the gradcheck defaults (h 1e-2, atol 2e-3, rtol 1e-2; see gradcheck.h).
//  - causality, padding, thread invariance: exact (bitwise).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "gradcheck.h"
#include "nanoattn/ops.h"
#include "softmax/softmax_kernel.h"

using namespace na;
using namespace na::testing;

namespace {

constexpr double kOutTol = 1e-5;
constexpr double kGradTol = 1e-5;

struct Case {
  int64_t B, H, T, S, D, Dv;
  bool causal;
  float scale;
};

std::vector<Tensor> inputs_for(const Case& c, uint64_t seed) {
  return {random_tensor({c.B, c.H, c.T, c.D}, seed), random_tensor({c.B, c.H, c.S, c.D}, seed + 1),
          random_tensor({c.B, c.H, c.S, c.Dv}, seed + 2)};
}

Fn fused(const Case& c, const Tensor* mask = nullptr) {
  Tensor m = mask ? *mask : Tensor();
  return [=](const std::vector<Var>& x) {
    return softmax_attention(x[0], x[1], x[2], c.scale, c.causal, m.defined() ? &m : nullptr);
  };
}

Fn reference(const Case& c, const Tensor* mask = nullptr) {
  Tensor m = mask ? *mask : Tensor();
  return [=](const std::vector<Var>& x) {
    return softmax_attention_reference(x[0], x[1], x[2], c.scale, c.causal,
                                       m.defined() ? &m : nullptr);
  };
}

void check_agrees(const Case& c, const Tensor* mask = nullptr, uint64_t seed = 1) {
  CAPTURE(c.B);
  CAPTURE(c.H);
  CAPTURE(c.T);
  CAPTURE(c.S);
  CAPTURE(c.causal);
  Agreement a = compare(fused(c, mask), reference(c, mask), inputs_for(c, seed));
  CAPTURE(a.max_out_diff);
  CAPTURE(a.max_grad_diff);
  CHECK(a.out_rel < kOutTol);
  CHECK(a.grad_rel < kGradTol);
}

// (B, S) padding mask: batch b pads its last pad[b] keys (or, with left, its first pad[b]).
Tensor padding_mask(int64_t B, int64_t S, const std::vector<int64_t>& pad, bool left = false) {
  Tensor m = Tensor::zeros({B, S});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < pad[b]; ++i) m[b * S + (left ? i : S - 1 - i)] = 1.0f;
  return m;
}

bool same_bits(const float* a, const float* b, int64_t n) {
  return std::memcmp(a, b, n * sizeof(float)) == 0;
}

// Output of the fused kernel (no grad), cloned.
Tensor run(const Case& c, const std::vector<Tensor>& in, const Tensor* mask = nullptr) {
  NoGrad ng;
  Tensor out = softmax_attention(tape().leaf(in[0]), tape().leaf(in[1]), tape().leaf(in[2]),
                                 c.scale, c.causal, mask)
                   .value()
                   .clone();
  tape().reset();
  return out;
}

}  // namespace

TEST_CASE("softmax_attention: fused agrees with the composite, causal and bidirectional") {
  for (bool causal : {true, false}) {
    check_agrees({2, 3, 20, 20, 8, 6, causal, 1.0f / std::sqrt(8.0f)});
    check_agrees({1, 2, 1, 1, 4, 4, causal, 0.5f});  // a single token
  }
  // Larger scale: peaked softmax, exercises the max subtraction.
  check_agrees({1, 2, 33, 33, 16, 8, true, 3.0f}, nullptr, 7);
}

TEST_CASE("softmax_attention: T != S (cross-attention, bidirectional)") {
  check_agrees({2, 2, 13, 29, 8, 5, false, 0.35f});
  check_agrees({1, 3, 29, 7, 4, 9, false, 0.5f});
  check_agrees({2, 1, 150, 70, 8, 8, false, 0.35f});  // several row blocks over a short S
}

TEST_CASE("softmax_attention: T spans several row blocks, not a multiple of the block") {
  static_assert(150 % kSoftmaxAttentionRowBlock != 0 && 150 > 2 * kSoftmaxAttentionRowBlock);
  check_agrees({2, 2, 150, 150, 16, 8, true, 0.25f});
  check_agrees({2, 2, 150, 150, 16, 8, false, 0.25f});
  check_agrees({1, 1, 150, 190, 8, 8, false, 0.25f});
  // More (b, h) tasks than scratch slots: each slot runs several tasks in turn.
  static_assert(5 * 16 > kSoftmaxAttentionSlots);
  check_agrees({5, 16, 70, 70, 4, 4, true, 0.5f});
}

TEST_CASE("softmax_attention: key padding mask, right and left, incl. rows that see only padding") {
  // Batch 0: 3 padded keys at the end; batch 1: none; batch 2: every key padded.
  Tensor right = padding_mask(3, 20, {3, 0, 20});
  check_agrees({3, 2, 20, 20, 8, 6, false, 0.4f}, &right);
  check_agrees({3, 2, 20, 20, 8, 6, true, 0.4f}, &right);
  // Left padding with causal: rows t < pad see only padding and output 0.
  Tensor left = padding_mask(2, 150, {70, 5}, true);
  check_agrees({2, 2, 150, 150, 8, 8, true, 0.4f}, &left);
  check_agrees({2, 2, 150, 150, 8, 8, false, 0.4f}, &left);
  // T != S with padding.
  Tensor cross = padding_mask(2, 31, {4, 30});
  check_agrees({2, 2, 17, 31, 8, 4, false, 0.4f}, &cross);
}

TEST_CASE("softmax_attention: padded keys are never attended; all-padding rows output 0, no gradient") {
  const Case c{2, 2, 10, 10, 4, 3, true, 0.5f};
  Tensor mask = padding_mask(2, 10, {3, 10});  // batch 1: all padding
  std::vector<Tensor> in = inputs_for(c, 11);
  Tensor base = run(c, in, &mask);

  // Changing padded keys / values (batch 0, s >= 7) changes nothing, bitwise.
  std::vector<Tensor> changed = {in[0].clone(), in[1].clone(), in[2].clone()};
  for (int64_t h = 0; h < c.H; ++h)
    for (int64_t s = 7; s < c.S; ++s) {
      for (int64_t d = 0; d < c.D; ++d) changed[1][(h * c.S + s) * c.D + d] += 5.0f;
      for (int64_t d = 0; d < c.Dv; ++d) changed[2][(h * c.S + s) * c.Dv + d] -= 3.0f;
    }
  Tensor after = run(c, changed, &mask);
  CHECK(same_bits(base.data(), after.data(), base.numel()));

  // Batch 1 outputs exactly 0.
  const int64_t half = base.numel() / 2;
  bool zeros = true;
  for (int64_t i = half; i < base.numel(); ++i) zeros = zeros && base[i] == 0.0f;
  CHECK(zeros);

  // Gradients: nothing reaches batch 1, nor the padded keys of batch 0.
  std::vector<Var> x = {tape().leaf(in[0].clone(), true), tape().leaf(in[1].clone(), true),
                        tape().leaf(in[2].clone(), true)};
  Var out = softmax_attention(x[0], x[1], x[2], c.scale, c.causal, &mask);
  tape().backward(out, random_tensor(out.shape(), 5));
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    const Tensor& g = x[i].grad();
    bool batch1_zero = true;
    for (int64_t j = g.numel() / 2; j < g.numel(); ++j) batch1_zero = batch1_zero && g[j] == 0.0f;
    CHECK(batch1_zero);
  }
  for (int i = 1; i < 3; ++i) {
    const Tensor& g = x[i].grad();
    const int64_t w = g.dim(3);
    bool padded_zero = true, others_nonzero = true;
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t s = 0; s < c.S; ++s)
        for (int64_t d = 0; d < w; ++d) {
          float gv = g[(h * c.S + s) * w + d];
          if (s >= 7) padded_zero = padded_zero && gv == 0.0f;
          else if (s < 6) others_nonzero = others_nonzero && gv != 0.0f;  // s = 6 sees 1 row
        }
    CHECK(padded_zero);
    CHECK(others_nonzero);
  }
  tape().reset();
}

TEST_CASE("softmax_attention: finite-difference gradients of q, k, v") {
  for (bool causal : {true, false}) {
    CAPTURE(causal);
    Case c{2, 2, 5, 5, 3, 4, causal, 0.7f};
    CHECK_GRADIENTS(fused(c), inputs_for(c, 21));
    // Only some inputs differentiable: the backward skips the others' work.
    CHECK_GRADIENTS(fused(c), inputs_for(c, 22), GradCheck{}, {false, false, true});
    CHECK_GRADIENTS(fused(c), inputs_for(c, 23), GradCheck{}, {true, false, false});
    CHECK_GRADIENTS(fused(c), inputs_for(c, 24), GradCheck{}, {false, true, false});
    // Padding (batch 1 all padding).
    Tensor mask = padding_mask(2, 5, {2, 5});
    CHECK_GRADIENTS(fused(c, &mask), inputs_for(c, 25));
    // Across row blocks.
    Case big{1, 1, 70, 70, 2, 2, causal, 0.9f};
    CHECK_GRADIENTS(fused(big), inputs_for(big, 26));
  }
  Case cross{1, 2, 4, 7, 3, 2, false, 0.6f};
  CHECK_GRADIENTS(fused(cross), inputs_for(cross, 27));
}

TEST_CASE("softmax_attention: q, k and v may be one Var (shared buffers in the backward)") {
  for (bool causal : {true, false}) {
    CAPTURE(causal);
    auto shared = [causal](const std::vector<Var>& x) {
      return softmax_attention(x[0], x[0], x[0], 0.6f, causal, nullptr);
    };
    auto shared_ref = [causal](const std::vector<Var>& x) {
      return softmax_attention_reference(x[0], x[0], x[0], 0.6f, causal, nullptr);
    };
    CHECK_GRADIENTS(shared, {random_tensor({1, 2, 6, 3}, 71)});
    Agreement a = compare(shared, shared_ref, {random_tensor({2, 2, 150, 8}, 72)});
    CHECK(a.out_rel < kOutTol);
    CHECK(a.grad_rel < kGradTol);
    // q and k shared, v separate.
    auto qk = [causal](const std::vector<Var>& x) {
      return softmax_attention(x[0], x[0], x[1], 0.6f, causal, nullptr);
    };
    CHECK_GRADIENTS(qk, {random_tensor({1, 2, 6, 3}, 73), random_tensor({1, 2, 6, 2}, 74)});
  }
}

TEST_CASE("softmax_attention: exact causality (later q, k, v change no earlier output)") {
  const Case c{2, 2, 150, 150, 8, 8, true, 0.3f};
  std::vector<Tensor> in = inputs_for(c, 31);
  Tensor base = run(c, in);
  for (int64_t t : {0, 63, 64, 100, 148}) {
    CAPTURE(t);
    std::vector<Tensor> changed = {in[0].clone(), in[1].clone(), in[2].clone()};
    for (int i = 0; i < 3; ++i) {
      const int64_t w = changed[i].dim(3), L = changed[i].dim(2);
      for (int64_t bh = 0; bh < c.B * c.H; ++bh)
        for (int64_t s = t + 1; s < L; ++s)
          for (int64_t d = 0; d < w; ++d) changed[i][(bh * L + s) * w + d] += 0.5f + 0.1f * d;
    }
    Tensor after = run(c, changed);
    bool prefix_same = true, suffix_changed = t + 1 >= c.T;
    for (int64_t bh = 0; bh < c.B * c.H; ++bh) {
      const float* a = base.data() + bh * c.T * c.Dv;
      const float* b = after.data() + bh * c.T * c.Dv;
      prefix_same = prefix_same && same_bits(a, b, (t + 1) * c.Dv);
      if (t + 1 < c.T) suffix_changed = suffix_changed || !same_bits(a + (t + 1) * c.Dv,
                                                                     b + (t + 1) * c.Dv,
                                                                     (c.T - t - 1) * c.Dv);
    }
    CHECK(prefix_same);
    CHECK(suffix_changed);  // the perturbation was real
  }
}

TEST_CASE("softmax_attention: gradients flow only backwards in time when causal") {
  // Seed the backward with dO = 0 after row t: q, k and v gradients after t must be exactly 0.
  const Case c{1, 2, 150, 150, 8, 8, true, 0.3f};
  std::vector<Tensor> in = inputs_for(c, 41);
  const int64_t t = 90;
  std::vector<Var> x = {tape().leaf(in[0].clone(), true), tape().leaf(in[1].clone(), true),
                        tape().leaf(in[2].clone(), true)};
  Var out = softmax_attention(x[0], x[1], x[2], c.scale, c.causal, nullptr);
  Tensor seed = random_tensor(out.shape(), 3);
  for (int64_t h = 0; h < c.H; ++h)
    for (int64_t s = t + 1; s < c.T; ++s)
      for (int64_t d = 0; d < c.Dv; ++d) seed[(h * c.T + s) * c.Dv + d] = 0.0f;
  tape().backward(out, seed);
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    const Tensor& g = x[i].grad();
    const int64_t w = g.dim(3);
    bool later_zero = true, earlier_nonzero = true;
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t s = 0; s < c.T; ++s)
        for (int64_t d = 0; d < w; ++d) {
          float gv = g[(h * c.T + s) * w + d];
          if (s > t) later_zero = later_zero && gv == 0.0f;
          else if (s > 0) earlier_nonzero = earlier_nonzero && gv != 0.0f;  // dq[0] = 0
        }
    CHECK(later_zero);
    CHECK(earlier_nonzero);
  }
  tape().reset();
}

TEST_CASE("softmax_attention: bitwise identical for 1 and 2 threads") {
  // 2 x 4 = 8 (b, h) tasks, each 3 row blocks: several tasks per thread.
  for (bool causal : {true, false}) {
    CAPTURE(causal);
    Case c{2, 4, 150, 150, 16, 8, causal, 0.25f};
    CHECK_THREAD_INVARIANT(fused(c), inputs_for(c, 51));
    Tensor mask = padding_mask(2, 150, {10, 149});
    CHECK_THREAD_INVARIANT(fused(c, &mask), inputs_for(c, 52));
  }
  Case many{5, 16, 40, 40, 4, 4, true, 0.5f};  // more tasks than slots
  CHECK_THREAD_INVARIANT(fused(many), inputs_for(many, 53));
}

TEST_CASE("softmax_attention: one tape entry, O(T) memory, nothing recorded without grad") {
  const int64_t T = 1024;
  const Case c{1, 1, T, T, 16, 16, true, 0.25f};
  std::vector<Tensor> in = inputs_for(c, 61);
  tape().reset();
  std::vector<Var> x = {tape().leaf(in[0], true), tape().leaf(in[1], true), tape().leaf(in[2], true)};
  const size_t entries = tape().entry_count(), bytes = tape().arena().bytes_in_use();
  Var out = softmax_attention(x[0], x[1], x[2], c.scale, c.causal, nullptr);
  CHECK(tape().entry_count() == entries + 1);
  tape().backward(out, random_tensor(out.shape(), 1));
  // Everything the forward and backward took from the arena (output, lse, score blocks,
  // gradients) is far below one T x T float matrix.
  const size_t used = tape().arena().bytes_in_use() - bytes;
  CAPTURE(used);
  CHECK(used < size_t(T) * T * sizeof(float) / 2);
  tape().reset();

  NoGrad ng;
  std::vector<Var> y = {tape().leaf(in[0], true), tape().leaf(in[1], true), tape().leaf(in[2], true)};
  Var o2 = softmax_attention(y[0], y[1], y[2], c.scale, c.causal, nullptr);
  CHECK(!o2.requires_grad());
  CHECK(tape().entry_count() == 0);
  tape().reset();
}

TEST_CASE("softmax_attention: shape errors name the op and the shapes") {
  auto leaf = [](Shape s) { return tape().leaf(Tensor::zeros(s)); };
  Var q = leaf({2, 3, 4, 8}), k = leaf({2, 3, 5, 8}), v = leaf({2, 3, 5, 6});
  CHECK_THROWS_WITH_AS(softmax_attention(leaf({3, 4, 8}), k, v, 1.0f, false, nullptr),
                       doctest::Contains("softmax_attention: q, k, v must be (B, H, T, D), (B, H, S, D), "
                                         "(B, H, S, Dv); got q (3, 4, 8), k (2, 3, 5, 8), v (2, 3, 5, 6)"),
                       Error);
  CHECK_THROWS_WITH_AS(softmax_attention(q, leaf({2, 2, 5, 8}), v, 1.0f, false, nullptr),
                       doctest::Contains("softmax_attention: batch and head dims (B, H) differ: q (2, 3, 4, 8), "
                                         "k (2, 2, 5, 8), v (2, 3, 5, 6)"),
                       Error);
  CHECK_THROWS_WITH_AS(softmax_attention(q, leaf({2, 3, 5, 7}), v, 1.0f, false, nullptr),
                       doctest::Contains("softmax_attention: q (2, 3, 4, 8) and k (2, 3, 5, 7) must have "
                                         "the same head dim D"),
                       Error);
  CHECK_THROWS_WITH_AS(softmax_attention(q, k, leaf({2, 3, 6, 6}), 1.0f, false, nullptr),
                       doctest::Contains("softmax_attention: k (2, 3, 5, 8) and v (2, 3, 6, 6) must have "
                                         "the same key length S"),
                       Error);
  CHECK_THROWS_WITH_AS(softmax_attention(q, k, v, 1.0f, true, nullptr),
                       doctest::Contains("softmax_attention: causal attention needs T == S; got q "
                                         "(2, 3, 4, 8) and k (2, 3, 5, 8)"),
                       Error);
  Tensor bad = Tensor::zeros({2, 4});
  CHECK_THROWS_WITH_AS(softmax_attention(q, k, v, 1.0f, false, &bad),
                       doctest::Contains("softmax_attention: key_padding_mask (2, 4) must be (B, S) = (2, 5)"),
                       Error);
  CHECK_THROWS_WITH_AS(softmax_attention_reference(q, k, v, 1.0f, true, nullptr),
                       doctest::Contains("softmax_attention_reference: causal attention needs T == S"),
                       Error);
  tape().reset();
}
