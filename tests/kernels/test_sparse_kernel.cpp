// The sparse-pattern softmax attention kernel (plugins/sparse_common/sparse_attention.cpp),
// shared by the local, longformer, sparse and reformer plugins, on arbitrary random patterns
// (keys listed twice, fixed-score entries, empty rows, every layout) against a composite of
// primitive ops, finite differences, and 1 vs 2 threads. The plugins' own patterns are tested
// through the conformance suite.
//
// The composite: row t's softmax over its entries is a softmax over 2S columns, the S keys
// with logit score + log(count of plain entries of s) and the S keys again with logit
// kFixedScore + log(count of fixed entries of s) (-1e30 and a zeroed probability where the
// count is 0), times [v; v].
//
// Tolerances: fused vs composite 1e-5 of the largest |value| compared (float32 rounding only);
// finite differences: the gradcheck defaults; threads: bitwise.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "gradcheck.h"
#include "nanoattn/ops.h"
#include "nanoattn/rng.h"
#include "sparse_common/sparse_attention.h"
#include "sparse_common/sparse_pattern.h"
#include "sparse_common/sparse_row.h"

using namespace na;
using namespace na::testing;

namespace {

// A pattern held in vectors (alive for the test), with its per-row lists.
struct HeldPattern {
  std::vector<int64_t> offsets;
  std::vector<int32_t> index;
  SparsePattern pat;
};

// count patterns of T rows over S keys: row lengths in [0, max_len], keys uniform (repeats
// happen), about one entry in five fixed; every seventh row empty.
HeldPattern random_pattern(SparsePattern::Layout layout, int64_t count, int64_t T, int64_t S,
                           int64_t max_len, uint64_t seed) {
  HeldPattern h;
  int64_t longest = 0;
  uint64_t counter = 0;
  auto draw = [&](int64_t n) { return static_cast<int64_t>(philox(seed, counter++)[0] % n); };
  for (int64_t p = 0; p < count; ++p) {
    for (int64_t t = 0; t < T; ++t) {
      h.offsets.push_back(static_cast<int64_t>(h.index.size()));
      const int64_t n = (t % 7 == 3) ? 0 : draw(max_len + 1);
      longest = std::max(longest, n);
      for (int64_t e = 0; e < n; ++e) {
        const int64_t s = draw(S);
        h.index.push_back(draw(5) == 0 ? SparsePattern::fixed_entry(s) : static_cast<int32_t>(s));
      }
    }
    h.offsets.push_back(static_cast<int64_t>(h.index.size()));
  }
  h.pat.layout = layout;
  h.pat.count = count;
  h.pat.rows = T;
  h.pat.keys = S;
  h.pat.offsets = h.offsets.data();
  h.pat.index = h.index.data();
  h.pat.max_row = longest;
  return h;
}

// The composite oracle described at the top.
Var composite(const Var& q, const Var& k, const Var& v, const SparsePattern& pat, float scale) {
  const int64_t B = q.dim(0), H = q.dim(1), T = q.dim(2), S = k.dim(2);
  Tensor plain = Tensor::zeros({B, H, T, S}), fixed = Tensor::zeros({B, H, T, S});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t* off = pat.offsets + pat.pattern_of(b, h, H) * (T + 1);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t e = off[t]; e < off[t + 1]; ++e) {
          const int32_t j = pat.index[e];
          Tensor& c = j >= 0 ? plain : fixed;
          c[((b * H + h) * T + t) * S + (j >= 0 ? j : -1 - j)] += 1.0f;
        }
    }
  Tensor log_plain = Tensor::zeros(plain.shape()), log_fixed = Tensor::zeros(plain.shape());
  Tensor mask = Tensor::zeros({B, H, T, 2 * S});
  for (int64_t i = 0; i < plain.numel(); ++i) {
    log_plain[i] = plain[i] > 0 ? std::log(plain[i]) : 0.0f;
    log_fixed[i] = fixed[i] > 0 ? sparse::kFixedScore + std::log(fixed[i]) : 0.0f;
    const int64_t row = i / S, s = i % S;
    mask[row * 2 * S + s] = plain[i] > 0 ? 0.0f : 1.0f;
    mask[row * 2 * S + S + s] = fixed[i] > 0 ? 0.0f : 1.0f;
  }
  Var scores = add(na::scale(matmul(q, k, false, true), scale), tape().leaf(log_plain));
  Var logits = concat({scores, tape().leaf(log_fixed)}, -1);  // (B, H, T, 2S)
  Var p = masked_fill(softmax(masked_fill(logits, mask, -1e30f)), mask, 0.0f);
  return matmul(p, concat({v, v}, 2));
}

std::vector<Tensor> qkv(int64_t B, int64_t H, int64_t T, int64_t S, int64_t D, int64_t Dv, uint64_t seed) {
  return {random_tensor({B, H, T, D}, seed), random_tensor({B, H, S, D}, seed + 1),
          random_tensor({B, H, S, Dv}, seed + 2)};
}

Fn fused(const SparsePattern& pat, float scale) {
  return [=](const std::vector<Var>& x) { return sparse_attention(x[0], x[1], x[2], pat, scale); };
}
Fn oracle(const SparsePattern& pat, float scale) {
  return [=](const std::vector<Var>& x) { return composite(x[0], x[1], x[2], pat, scale); };
}

void check_agrees(const SparsePattern& pat, const std::vector<Tensor>& in, float scale) {
  Agreement a = compare(fused(pat, scale), oracle(pat, scale), in);
  CAPTURE(a.max_out_diff);
  CAPTURE(a.max_grad_diff);
  CHECK(a.out_rel < 1e-5);
  CHECK(a.grad_rel < 1e-5);
}

}  // namespace

TEST_CASE("sparse_attention: random patterns (repeats, fixed entries, empty rows) == composite") {
  using L = SparsePattern::Layout;
  {  // one pattern for every (b, h)
    HeldPattern h = random_pattern(L::Shared, 1, 20, 20, 9, 1);
    check_agrees(h.pat, qkv(2, 3, 20, 20, 8, 6, 2), 0.35f);
  }
  {  // per head, cycling (3 patterns over 4 heads), T != S
    HeldPattern h = random_pattern(L::PerHead, 3, 13, 29, 12, 3);
    check_agrees(h.pat, qkv(2, 4, 13, 29, 8, 5, 4), 0.5f);
  }
  {  // per (b, h), several row blocks, T not a multiple of the block
    static_assert(150 % kSparseRowBlock != 0);
    HeldPattern h = random_pattern(L::PerTask, 2 * 2, 150, 150, 20, 5);
    check_agrees(h.pat, qkv(2, 2, 150, 150, 16, 8, 6), 0.25f);
  }
  {  // more row blocks than scratch slots
    static_assert(5 * 8 * 3 > kSparseSlots);
    HeldPattern h = random_pattern(L::Shared, 1, 150, 40, 6, 7);
    check_agrees(h.pat, qkv(5, 8, 150, 40, 4, 4, 8), 0.5f);
  }
}

TEST_CASE("sparse_attention: finite-difference gradients of q, k, v") {
  HeldPattern h = random_pattern(SparsePattern::Layout::PerTask, 2 * 2, 9, 7, 6, 9);
  CHECK_GRADIENTS(fused(h.pat, 0.7f), qkv(2, 2, 9, 7, 5, 3, 10));
}

TEST_CASE("sparse_attention: q, k and v may be one Var (shared buffers in the backward)") {
  HeldPattern h = random_pattern(SparsePattern::Layout::Shared, 1, 12, 12, 8, 11);
  auto same = [&](bool use_oracle) {
    return [=, pat = h.pat](const std::vector<Var>& x) {
      return use_oracle ? composite(x[0], x[0], x[0], pat, 0.5f) : sparse_attention(x[0], x[0], x[0], pat, 0.5f);
    };
  };
  std::vector<Tensor> in{random_tensor({2, 2, 12, 6}, 12)};
  Agreement a = compare(same(false), same(true), in);
  CHECK(a.out_rel < 1e-5);
  CHECK(a.grad_rel < 1e-5);
  CHECK_GRADIENTS(same(false), in);
}

TEST_CASE("sparse_attention: empty rows output 0; a row of fixed entries averages their values") {
  // Row 0: empty. Row 1: key 2 fixed, twice, and key 0 fixed: weights 2/3, 1/3.
  std::vector<int64_t> off{0, 0, 3};
  std::vector<int32_t> idx{SparsePattern::fixed_entry(2), SparsePattern::fixed_entry(0),
                           SparsePattern::fixed_entry(2)};
  SparsePattern pat{SparsePattern::Layout::Shared, 1, 2, 3, off.data(), idx.data(), 3};
  std::vector<Tensor> in = qkv(1, 1, 2, 3, 4, 2, 13);
  Tensor y = fused(pat, 1.0f)({tape().leaf(in[0]), tape().leaf(in[1]), tape().leaf(in[2])}).value().clone();
  tape().reset();
  const Tensor& v = in[2];
  for (int64_t c = 0; c < 2; ++c) {
    CHECK(y[c] == 0.0f);
    CHECK(y[2 + c] == doctest::Approx((2 * v[2 * 2 + c] + v[c]) / 3.0f).epsilon(1e-6));
  }
}

TEST_CASE("sparse_attention: bitwise identical for 1 and 2 threads") {
  HeldPattern shared = random_pattern(SparsePattern::Layout::Shared, 1, 200, 200, 40, 14);
  CHECK_THREAD_INVARIANT(fused(shared.pat, 0.3f), qkv(2, 4, 200, 200, 16, 16, 15));
  HeldPattern per_task = random_pattern(SparsePattern::Layout::PerTask, 3 * 2, 130, 130, 30, 16);
  CHECK_THREAD_INVARIANT(fused(per_task.pat, 0.3f), qkv(3, 2, 130, 130, 8, 8, 17));
}

TEST_CASE("build_pattern: counts, offsets and the longest row") {
  // A causal band of width 3 over T = 6, per head (2 patterns: the second shifted by one).
  SparsePattern pat = build_pattern(SparsePattern::Layout::PerHead, 2, 6, 6, [](int64_t p, int64_t t, int32_t* out) {
    RowWriter r{out};
    for (int64_t s = std::max<int64_t>(0, t - 2 - p); s <= t; ++s) r.add(s);
    if (p == 1) r.add_fixed(t);
    return r.n;
  });
  CHECK(pat.count == 2);
  CHECK(pat.max_row == 5);  // pattern 1, rows >= 3: 4 keys + the fixed entry
  CHECK(pat.offsets[0] == 0);
  CHECK(pat.offsets[6] == 1 + 2 + 3 + 3 + 3 + 3);
  CHECK(pat.offsets[7] == pat.offsets[6]);  // pattern 1 starts where pattern 0 ends
  const int32_t* row5 = pat.index + pat.offsets[7 + 5];
  CHECK(row5[0] == 2);
  CHECK(row5[3] == 5);
  CHECK(row5[4] == SparsePattern::fixed_entry(5));
  tape().reset();
}
