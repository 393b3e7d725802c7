// Broadcasting binary ops. Tolerances: the gradcheck defaults (see gradcheck.h); div keeps the
// divisor away from 0 so the 4-point estimate stays accurate.
#include <doctest/doctest.h>

#include "gradcheck.h"
#include "nanoattn/ops.h"

using namespace na;
using namespace na::testing;

namespace {
using Binary = Var (*)(const Var&, const Var&);

void check_binary(Binary op, const Shape& a, const Shape& b, bool positive_b = false) {
  Tensor ta = random_tensor(a, 1), tb = positive_b ? random_tensor(b, 2, 0.5f, 2.0f) : random_tensor(b, 2);
  CHECK_GRADIENTS([op](const std::vector<Var>& v) { return op(v[0], v[1]); }, {ta, tb});
}
}  // namespace

TEST_CASE("binary ops: values with broadcasting") {
  Var a = tape().leaf(Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6}));
  Var b = tape().leaf(Tensor::from({3}, {10, 20, 30}));
  CHECK(add(a, b).value().to_vector() == std::vector<float>{11, 22, 33, 14, 25, 36});
  CHECK(sub(a, b).value().to_vector() == std::vector<float>{-9, -18, -27, -6, -15, -24});
  CHECK(mul(a, b).value().to_vector() == std::vector<float>{10, 40, 90, 40, 100, 180});
  Var c = tape().leaf(Tensor::from({2, 1}, {2, 4}));
  CHECK(div(a, c).value().to_vector() == std::vector<float>{0.5, 1, 1.5, 1, 1.25, 1.5});
  CHECK(scale(a, 2).value().to_vector() == std::vector<float>{2, 4, 6, 8, 10, 12});
  CHECK(add_scalar(a, 1).value().to_vector() == std::vector<float>{2, 3, 4, 5, 6, 7});
  tape().reset();
}

TEST_CASE("binary ops: gradients, same shape and broadcast both ways") {
  for (Binary op : {Binary(add), Binary(sub), Binary(mul), Binary(div)}) {
    bool pos = op == Binary(div);
    check_binary(op, {3, 4}, {3, 4}, pos);
    check_binary(op, {2, 3, 4}, {4}, pos);        // bias-like
    check_binary(op, {2, 1, 4}, {3, 1}, pos);     // both sides broadcast
    check_binary(op, {1}, {2, 3}, pos);           // scalar-like
  }
}

TEST_CASE("scale and add_scalar gradients") {
  CHECK_GRADIENTS([](const std::vector<Var>& v) { return scale(v[0], -1.5f); }, {random_tensor({3, 5}, 3)});
  CHECK_GRADIENTS([](const std::vector<Var>& v) { return add_scalar(v[0], 2.0f); }, {random_tensor({3, 5}, 4)});
}

TEST_CASE("binary ops: shape mismatch names the op and both shapes") {
  Var a = tape().leaf(Tensor::zeros({2, 3}));
  Var b = tape().leaf(Tensor::zeros({4}));
  CHECK_THROWS_WITH_AS(mul(a, b), doctest::Contains("mul: shapes (2, 3) and (4,) do not broadcast"), Error);
  tape().reset();
}
