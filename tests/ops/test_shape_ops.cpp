// reshape, permute / transpose, slice, split_heads, concat, masked_fill. Tolerances: the gradcheck defaults
// (see gradcheck.h); these ops only move values, so their gradients are exact.
#include <doctest/doctest.h>

#include "gradcheck.h"
#include "nanoattn/ops.h"

using namespace na;
using namespace na::testing;

namespace {

std::vector<float> iota(int64_t n) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(i);
  return v;
}

// The permutation computed by nested loops over the output, the obvious way.
Tensor naive_permute(const Tensor& x, const std::vector<int>& perm) {
  const Shape& xs = x.shape();
  int r = xs.rank();
  Shape os;
  for (int p : perm) os.push_back(xs[p]);
  Tensor out = Tensor::empty(os);
  int64_t idx[kMaxDims] = {};
  for (int64_t i = 0; i < out.numel(); ++i) {
    int64_t rem = i;
    for (int k = r - 1; k >= 0; --k) idx[perm[k]] = rem % os[k], rem /= os[k];  // x index
    int64_t src = 0;
    for (int k = 0; k < r; ++k) src = src * xs[k] + idx[k];
    out[i] = x[src];
  }
  return out;
}

}  // namespace

TEST_CASE("reshape: a view sharing storage, and its gradient") {
  Var x = tape().leaf(Tensor::from({2, 3}, iota(6)), true);
  Var y = reshape(x, {3, 2});
  CHECK(y.shape() == Shape{3, 2});
  CHECK(y.value().data() == x.value().data());  // no copy
  CHECK(y.value().to_vector() == iota(6));
  CHECK(y.requires_grad());
  tape().reset();
  {
    NoGrad no_grad;
    Var p = tape().leaf(Tensor::zeros({4}), true);
    CHECK_FALSE(reshape(p, {2, 2}).requires_grad());
  }
  tape().reset();
  CHECK_GRADIENTS([](const std::vector<Var>& v) { return reshape(v[0], {4, 3}); },
                  {random_tensor({2, 6}, 1)});
  // A view of a view, then an op that reads it: the gradient flows through both.
  CHECK_GRADIENTS(
      [](const std::vector<Var>& v) { return mul(reshape(reshape(v[0], {6, 2}), {2, 3, 2}), v[0]); },
      {random_tensor({2, 3, 2}, 2)});
}

TEST_CASE("permute and transpose: values") {
  Var a = tape().leaf(Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6}));
  CHECK(transpose(a, 0, 1).value().to_vector() == std::vector<float>{1, 4, 2, 5, 3, 6});
  CHECK(transpose(a, -1, -2).shape() == Shape{3, 2});
  // out[i, j, k] = x[j, k, i]
  Var b = tape().leaf(Tensor::from({2, 2, 2}, iota(8)));
  Var pb = permute(b, {2, 0, 1});
  CHECK(pb.value().to_vector() == std::vector<float>{0, 2, 4, 6, 1, 3, 5, 7});
  // (B, T, H, D) -> (B, H, T, D) with B = 1, T = 2, H = 3, D = 2: rows of D move as a block.
  Var c = tape().leaf(Tensor::from({1, 2, 3, 2}, iota(12)));
  Var pc = permute(c, {0, 2, 1, 3});
  CHECK(pc.shape() == Shape{1, 3, 2, 2});
  CHECK(pc.value().to_vector() == std::vector<float>{0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11});
  tape().reset();
}

TEST_CASE("permute: agrees with a naive loop for many layouts") {
  struct Case {
    Shape shape;
    std::vector<int> perm;
  };
  std::vector<Case> cases = {
      {{3, 5, 4, 6}, {0, 2, 1, 3}},      // (B, T, H, D) -> (B, H, T, D)
      {{3, 4, 5, 6}, {0, 2, 1, 3}},      // and back
      {{4, 70, 3}, {2, 1, 0}},           // full reversal, strided innermost
      {{2, 1, 3, 1, 4}, {4, 1, 3, 0, 2}},  // size-1 dims are dropped
      {{2, 3, 4, 5, 6}, {4, 2, 0, 3, 1}},  // 5-D
      {{2, 3, 4, 5}, {0, 1, 2, 3}},      // identity: one contiguous copy
      {{2, 3, 4, 5}, {2, 3, 0, 1}},      // merged pairs (2,3)(0,1)
      {{300, 129}, {1, 0}},              // big enough to run in parallel
  };
  for (const Case& c : cases) {
    CAPTURE(c.shape);
    Tensor x = random_tensor(c.shape, 7);
    Var p = permute(tape().leaf(x), c.perm);
    CHECK(p.value().to_vector() == naive_permute(x, c.perm).to_vector());
    tape().reset();
  }
}

TEST_CASE("permute and transpose: gradients") {
  std::vector<std::pair<Shape, std::vector<int>>> cases = {
      {{3, 4}, {1, 0}},
      {{2, 3, 4}, {2, 0, 1}},
      {{2, 3, 4}, {1, 0, 2}},
      {{2, 3, 4, 2}, {0, 2, 1, 3}},  // (B, T, H, D) -> (B, H, T, D)
      {{2, 3, 1, 2}, {3, 1, 0, 2}},
      {{2, 1, 2, 3, 2}, {4, 2, 0, 3, 1}},
  };
  for (const auto& [shape, perm] : cases) {
    CAPTURE(shape);
    CHECK_GRADIENTS([perm](const std::vector<Var>& v) { return permute(v[0], perm); },
                    {random_tensor(shape, 3)});
  }
  CHECK_GRADIENTS([](const std::vector<Var>& v) { return transpose(v[0], 1, -1); },
                  {random_tensor({2, 3, 4}, 4)});
}

TEST_CASE("slice: values and gradients on the first, a middle and the last axis") {
  Var x = tape().leaf(Tensor::from({2, 3, 2}, iota(12)));
  CHECK(slice(x, 0, 1, 2).value().to_vector() == std::vector<float>{6, 7, 8, 9, 10, 11});
  CHECK(slice(x, 1, 1, 3).value().to_vector() == std::vector<float>{2, 3, 4, 5, 8, 9, 10, 11});
  CHECK(slice(x, -1, 0, 1).value().to_vector() == std::vector<float>{0, 2, 4, 6, 8, 10});
  CHECK(slice(x, 1, 2, 2).shape() == Shape{2, 0, 2});  // empty is fine
  tape().reset();
  Tensor t = random_tensor({4, 5, 3}, 5);
  struct Range {
    int axis;
    int64_t start, end;
  };
  for (Range r : {Range{0, 1, 3}, Range{1, 2, 5}, Range{2, 0, 2}, Range{-1, 1, 3}}) {
    CAPTURE(r.axis);
    CHECK_GRADIENTS([r](const std::vector<Var>& v) { return slice(v[0], r.axis, r.start, r.end); }, {t});
  }
  // Two overlapping slices of one input: their gradients add up.
  CHECK_GRADIENTS(
      [](const std::vector<Var>& v) { return add(slice(v[0], 1, 0, 3), slice(v[0], 1, 2, 5)); }, {t});
}

TEST_CASE("split_heads: equals slice + reshape + permute; gradients of q, k, v from one input") {
  // x (2, 5, 13): heads of width 4 from column 1 (a ragged start and tail, as no real model has).
  Var x = tape().leaf(random_tensor({2, 5, 13}, 7));
  Var fused = split_heads(x, 1, 3, 4);
  Var composite = permute(reshape(slice(x, -1, 1, 13), {2, 5, 3, 4}), {0, 2, 1, 3});
  CHECK(fused.shape() == Shape{2, 3, 5, 4});
  CHECK(fused.value().to_vector() == composite.value().to_vector());  // a copy: bitwise
  tape().reset();
  CHECK_GRADIENTS([](const std::vector<Var>& v) { return split_heads(v[0], 1, 3, 4); },
                  {random_tensor({2, 5, 13}, 8)});
  // q, k, v of attention: three disjoint column ranges of one (B, T, 3 H d) input, combined so
  // that a head or time index mixed up anywhere changes the result.
  CHECK_GRADIENTS(
      [](const std::vector<Var>& v) {
        Var q = split_heads(v[0], 0, 2, 3), k = split_heads(v[0], 6, 2, 3), w = split_heads(v[0], 12, 2, 3);
        return add(mul(q, k), mul(w, w));
      },
      {random_tensor({3, 4, 18}, 9)});
  CHECK_THROWS_WITH_AS(split_heads(tape().leaf(Tensor::zeros({2, 3, 8})), 2, 2, 4),
                       doctest::Contains("split_heads: 2 heads of 4 columns from column 2 do not fit x (2, 3, 8)"), Error);
  CHECK_THROWS_WITH_AS(split_heads(tape().leaf(Tensor::zeros({6, 8})), 0, 2, 4),
                       doctest::Contains("want x (B, T, n)"), Error);
  tape().reset();
}

TEST_CASE("concat: values and gradients of three inputs along each axis") {
  Var a = tape().leaf(Tensor::from({2, 1}, {1, 2}));
  Var b = tape().leaf(Tensor::from({2, 2}, {3, 4, 5, 6}));
  Var c = tape().leaf(Tensor::from({2, 1}, {7, 8}));
  CHECK(concat({a, b, c}, 1).value().to_vector() == std::vector<float>{1, 3, 4, 7, 2, 5, 6, 8});
  CHECK(concat({b, b}, 0).value().to_vector() == std::vector<float>{3, 4, 5, 6, 3, 4, 5, 6});
  tape().reset();
  for (int axis : {0, 1, 2}) {
    CAPTURE(axis);
    Shape s1{2, 3, 4}, s2{2, 3, 4}, s3{2, 3, 4};
    s1[axis] = 1, s2[axis] = 2, s3[axis] = 3;
    CHECK_GRADIENTS([axis](const std::vector<Var>& v) { return concat({v[0], v[1], v[2]}, axis); },
                    {random_tensor(s1, 1), random_tensor(s2, 2), random_tensor(s3, 3)});
  }
  // One input without a gradient, one used twice.
  CHECK_GRADIENTS([](const std::vector<Var>& v) { return concat({v[0], v[1], v[0]}, -1); },
                  {random_tensor({3, 2}, 4), random_tensor({3, 5}, 5)}, GradCheck{}, {true, false});
}

TEST_CASE("masked_fill: values and gradients, same-shape and broadcast masks") {
  Var x = tape().leaf(Tensor::from({2, 2}, {1, 2, 3, 4}));
  Tensor causal = Tensor::from({2, 2}, {0, 1, 0, 0});
  CHECK(masked_fill(x, causal, -9).value().to_vector() == std::vector<float>{1, -9, 3, 4});
  CHECK(masked_fill(x, Tensor::from({2, 1}, {1, 0}), 0).value().to_vector() ==
        std::vector<float>{0, 0, 3, 4});
  tape().reset();
  // A (T, T) causal mask on (B, H, T, T) scores, as attention uses it.
  Tensor upper = Tensor::zeros({4, 4});
  for (int i = 0; i < 4; ++i)
    for (int j = i + 1; j < 4; ++j) upper[i * 4 + j] = 1;
  CHECK_GRADIENTS([upper](const std::vector<Var>& v) { return masked_fill(v[0], upper, -1e9f); },
                  {random_tensor({2, 3, 4, 4}, 1)});
  Tensor same = random_tensor({3, 5}, 2);
  for (int64_t i = 0; i < same.numel(); ++i) same[i] = same[i] > 0 ? 1.0f : 0.0f;
  CHECK_GRADIENTS([same](const std::vector<Var>& v) { return masked_fill(v[0], same, 0.5f); },
                  {random_tensor({3, 5}, 3)});
  // Masked elements get exactly zero gradient.
  Var y = tape().leaf(Tensor::from({2, 2}, {1, 2, 3, 4}), true);
  tape().backward(masked_fill(y, causal, 0), Tensor::full({2, 2}, 1));
  CHECK(y.grad().to_vector() == std::vector<float>{1, 0, 1, 1});
  tape().reset();
}

TEST_CASE("shape ops: errors name the op and the shapes") {
  Var x = tape().leaf(Tensor::zeros({2, 3, 4}));
  CHECK_THROWS_WITH_AS(reshape(x, {5, 5}), doctest::Contains("reshape: cannot reshape (2, 3, 4) (24 elements) to (5, 5)"), Error);
  CHECK_THROWS_WITH_AS(permute(x, {0, 0, 1}), doctest::Contains("permute: perm [0, 0, 1] is not a permutation of the 3 axes of x (2, 3, 4)"), Error);
  CHECK_THROWS_WITH_AS(permute(x, {1, 0}), doctest::Contains("permute: perm [1, 0] is not a permutation of the 3 axes of x (2, 3, 4)"), Error);
  CHECK_THROWS_WITH_AS(transpose(x, 0, 3), doctest::Contains("transpose: axis 3 is out of range for x (2, 3, 4)"), Error);
  CHECK_THROWS_WITH_AS(slice(x, 1, 2, 5), doctest::Contains("slice: [2, 5) is out of range for axis 1 of x (2, 3, 4)"), Error);
  CHECK_THROWS_WITH_AS(slice(x, 0, 2, 1), doctest::Contains("slice: [2, 1) is out of range for axis 0 of x (2, 3, 4)"), Error);
  CHECK_THROWS_WITH_AS(slice(x, 3, 0, 1), doctest::Contains("slice: axis 3 is out of range for x (2, 3, 4)"), Error);
  Var y = tape().leaf(Tensor::zeros({2, 5, 4}));
  CHECK_THROWS_WITH_AS(concat({x, y}, 2), doctest::Contains("concat: input 1 has shape (2, 5, 4) but input 0 has (2, 3, 4): all dims but axis 2 must match"), Error);
  CHECK_THROWS_WITH_AS(concat({x, tape().leaf(Tensor::zeros({2, 3}))}, 0), doctest::Contains("concat: input 1 has shape (2, 3)"), Error);
  CHECK_THROWS_WITH_AS(concat({}, 0), doctest::Contains("concat: needs at least one input"), Error);
  CHECK_THROWS_WITH_AS(masked_fill(x, Tensor::zeros({3, 3}), 0), doctest::Contains("masked_fill: shapes (2, 3, 4) and (3, 3) do not broadcast"), Error);
  CHECK_THROWS_WITH_AS(masked_fill(x, Tensor::zeros({2, 1, 1, 1}), 0), doctest::Contains("masked_fill: mask (2, 1, 1, 1) does not broadcast to x (2, 3, 4)"), Error);
  CHECK_THROWS_WITH_AS(masked_fill(tape().leaf(Tensor::zeros({1, 4})), Tensor::zeros({3, 4}), 0), doctest::Contains("masked_fill: mask (3, 4) does not broadcast to x (1, 4)"), Error);
  tape().reset();
}
