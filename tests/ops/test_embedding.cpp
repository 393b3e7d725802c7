// embedding. Tolerances: gradcheck defaults (linear in the table); vs the one-hot matmul 1e-6 of the largest |gradient|, or 1e-4 where 5000 positions sum in another order.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "gradcheck.h"
#include "nanoattn/ops.h"

using namespace na;
using namespace na::testing;

namespace {

using Ids = std::vector<int32_t>;

// Composite: one-hot rows (N, V) times the table (V, C), reshaped to ids_shape + (C,).
Var embedding_composite(const Var& table, const Ids& ids, const Shape& ids_shape) {
  int64_t V = table.dim(0), N = static_cast<int64_t>(ids.size());
  Tensor onehot = Tensor::zeros({N, V});
  for (int64_t p = 0; p < N; ++p) onehot[p * V + ids[p]] = 1.0f;
  Shape os = ids_shape;
  os.push_back(table.dim(1));
  return reshape(matmul(tape().leaf(onehot), table), os);
}

}  // namespace

TEST_CASE("embedding: values and the scatter-add backward with repeated ids") {
  Var table = tape().leaf(Tensor::from({3, 2}, {0, 1, 2, 3, 4, 5}), true);
  Var y = embedding(table, Ids{2, 0, 2, 1}, Shape{2, 2});
  CHECK(y.shape() == Shape{2, 2, 2});
  CHECK(y.value().to_vector() == std::vector<float>{4, 5, 0, 1, 4, 5, 2, 3});
  tape().backward(y, Tensor::from({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8}));
  // row 0 <- position 1; row 1 <- position 3; row 2 <- positions 0 and 2
  CHECK(table.grad().to_vector() == std::vector<float>{3, 4, 7, 8, 6, 8});
  tape().reset();
}

TEST_CASE("embedding: finite-difference gradient, 1-D and 2-D ids with repeats") {
  Tensor table = random_tensor({5, 4}, 3);
  Ids ids = {4, 0, 4, 2, 2, 4};
  CHECK_GRADIENTS([ids](const std::vector<Var>& v) { return embedding(v[0], ids, Shape{2, 3}); }, {table});
  CHECK_GRADIENTS([ids](const std::vector<Var>& v) { return embedding(v[0], ids, Shape{6}); }, {table});
}

// n ids in [0, V), every id repeated many times when n >> V.
Ids spread_ids(int64_t n, int32_t V) {
  Ids ids(n);
  for (int64_t p = 0; p < n; ++p) ids[p] = static_cast<int32_t>(p * p % V);
  return ids;
}

TEST_CASE("embedding: agrees with a one-hot matmul") {
  // (37, 96) with 5000 positions: several column chunks in the backward.
  struct Case {
    Shape ids_shape, table;
    double grad_tol;  // a row hit ~135 times (|grad| ~ 10) sums in another order than the GEMM
  };
  for (auto [ids_shape, table, grad_tol] : {Case{{3, 4}, {7, 5}, 1e-6}, Case{{50, 100}, {37, 96}, 1e-4}}) {
    CAPTURE(table);
    Ids ids = spread_ids(ids_shape.numel(), static_cast<int32_t>(table[0]));
    Agreement a = compare([&](const std::vector<Var>& v) { return embedding(v[0], ids, ids_shape); },
                          [&](const std::vector<Var>& v) { return embedding_composite(v[0], ids, ids_shape); },
                          {random_tensor(table, 8)});
    CHECK(a.out_rel == 0);
    CHECK(a.grad_rel < grad_tol);
  }
}

TEST_CASE("embedding: the backward is bitwise identical for 1 thread and all threads") {
  // 5000 positions over 37 ids: every row is hit many times, from every column chunk.
  Ids ids = spread_ids(5000, 37);
  CHECK_THREAD_INVARIANT([&](const std::vector<Var>& v) { return embedding(v[0], ids, Shape{50, 100}); },
                         {random_tensor({37, 96}, 4)});
}

TEST_CASE("embedding: errors name the op, the position, the id and the shapes") {
  Var table = tape().leaf(Tensor::zeros({3, 2}));
  CHECK_THROWS_WITH_AS(embedding(table, Ids{0, 1, 2, 3}, Shape{2, 2}),
                       doctest::Contains("embedding: id 3 at position 3 (index (1, 1) of ids_shape (2, 2)) "
                                         "is out of range [0, 3) for table (3, 2)"), Error);
  CHECK_THROWS_WITH_AS(embedding(table, Ids{-1}, Shape{1}),
                       doctest::Contains("embedding: id -1 at position 0 (index (0)"), Error);
  CHECK_THROWS_WITH_AS(embedding(table, Ids{0, 1, 2}, Shape{2, 2}),
                       doctest::Contains("embedding: got 3 ids for ids_shape (2, 2), which has 4 positions"), Error);
  CHECK_THROWS_WITH_AS(embedding(tape().leaf(Tensor::zeros({6})), Ids{0}, Shape{1}),
                       doctest::Contains("embedding: table must be (V, C), got (6,)"), Error);
  CHECK_THROWS_WITH_AS(embedding(table, Ids(16, 0), Shape{2, 2, 2, 2, 1}),
                       doctest::Contains("embedding: ids_shape (2, 2, 2, 2, 1) has 5 dims"), Error);
  tape().reset();
}
