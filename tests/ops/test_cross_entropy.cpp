// cross_entropy. Tolerances: gradcheck defaults; fused vs composite within 1e-6 of the largest |value| of loss and gradients.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "gradcheck.h"
#include "nanoattn/ops.h"

using namespace na;
using namespace na::testing;

namespace {

using Targets = std::vector<int32_t>;

// Composite: log_softmax, then the smoothed one-hot q = (1 - ls) onehot(target) + ls / V
// (zero rows where ignored) picks the terms: loss = -sum(q * log p) / count.
// logits: (..., V) -> (1,)
Var cross_entropy_composite(const Var& logits, const Targets& targets, float ls, int32_t ignore) {
  int64_t V = logits.dim(-1);
  Tensor q = Tensor::zeros(logits.shape());
  int64_t count = 0;
  for (size_t r = 0; r < targets.size(); ++r) {
    if (targets[r] == ignore) continue;
    ++count;
    for (int64_t v = 0; v < V; ++v) q[r * V + v] = ls / V + (v == targets[r] ? 1.0f - ls : 0.0f);
  }
  Var picked = sum_all(mul(log_softmax(logits), tape().leaf(q)));
  return scale(picked, -1.0f / count);
}

}  // namespace

TEST_CASE("cross_entropy: hand-computed values") {
  // Each row is [1, 2, 3]: log p = [-2.40760596, -1.40760596, -0.40760596].
  Var x = tape().leaf(Tensor::from({2, 3}, {1, 2, 3, 1, 2, 3}));
  CHECK(cross_entropy(x, Targets{2, 0}).value()[0] == doctest::Approx(1.40760596f).epsilon(1e-6));
  CHECK(cross_entropy(x, Targets{2, -100}).value()[0] == doctest::Approx(0.40760596f).epsilon(1e-6));
  CHECK(cross_entropy(x, Targets{7, 0}, 0.0f, 7).value()[0] == doctest::Approx(2.40760596f).epsilon(1e-6));
  // Smoothing 0.1: 0.9 * 0.40760596 + 0.1 * mean(2.40760596, 1.40760596, 0.40760596)
  CHECK(cross_entropy(x, Targets{2, 2}, 0.1f).value()[0] == doctest::Approx(0.50760596f).epsilon(1e-6));
  // Large logits do not overflow.
  Var big = tape().leaf(Tensor::from({1, 2}, {1000, 1000}));
  CHECK(cross_entropy(big, Targets{0}).value()[0] == doctest::Approx(0.69314718f).epsilon(1e-6));
  tape().reset();
}

TEST_CASE("cross_entropy: every row ignored gives loss 0 and zero gradient") {
  Var x = tape().leaf(random_tensor({2, 3}, 1), true);
  Var loss = cross_entropy(x, Targets{-100, -100});
  CHECK(loss.value()[0] == 0.0f);
  tape().backward(loss);
  for (int64_t i = 0; i < 6; ++i) CHECK((!x.has_grad() || x.grad()[i] == 0.0f));
  tape().reset();
}

TEST_CASE("cross_entropy: finite-difference gradients, label smoothing and ignore_index") {
  struct Case {
    float ls;
    int32_t ignore;
    Targets targets;
  };
  for (const Case& c : {Case{0.0f, -100, {0, 4, 2, 1, 3, 0}}, Case{0.2f, -100, {0, 4, 2, 1, 3, 0}},
                        Case{0.0f, -1, {3, -1, 2, -1, 0, 4}}, Case{0.1f, 2, {2, 4, 2, 1, 0, 3}}}) {
    CAPTURE(c.ls);
    CAPTURE(c.ignore);
    Tensor logits = random_tensor({2, 3, 5}, 7, -2.0f, 2.0f);
    CHECK_GRADIENTS([c](const std::vector<Var>& v) { return cross_entropy(v[0], c.targets, c.ls, c.ignore); },
                    {logits});
  }
}

// Targets for n rows of V: a deterministic spread, every 7th row ignored.
Targets spread_targets(int64_t n, int32_t V) {
  Targets t(n);
  for (int64_t r = 0; r < n; ++r) t[r] = r % 7 == 3 ? -100 : static_cast<int32_t>(r * 31 % V);
  return t;
}

TEST_CASE("cross_entropy: fused agrees with log_softmax + one-hot pick + sum + scale") {
  // (2000, 50): many parallel row chunks.
  for (Shape s : {Shape{3, 4, 7}, Shape{2000, 50}})
  for (float ls : {0.0f, 0.1f}) {
    CAPTURE(s);
    CAPTURE(ls);
    Targets targets = spread_targets(s.numel() / s[-1], static_cast<int32_t>(s[-1]));
    std::vector<Tensor> in = {random_tensor(s, 9, -3.0f, 3.0f)};
    Agreement a = compare(
        [&](const std::vector<Var>& v) { return cross_entropy(v[0], targets, ls); },
        [&](const std::vector<Var>& v) { return cross_entropy_composite(v[0], targets, ls, -100); }, in);
    CHECK(a.out_rel < 1e-6);
    CHECK(a.grad_rel < 1e-6);
  }
}

TEST_CASE("cross_entropy: bitwise identical for 1 thread and all threads") {
  Targets targets = spread_targets(2000, 50);
  CHECK_THREAD_INVARIANT([&](const std::vector<Var>& v) { return cross_entropy(v[0], targets, 0.1f); },
                         {random_tensor({2000, 50}, 13, -3.0f, 3.0f)});
}

TEST_CASE("cross_entropy: errors name the op, the row, the values and the shapes") {
  Var x = tape().leaf(Tensor::zeros({2, 5}));
  CHECK_THROWS_WITH_AS(cross_entropy(x, Targets{1, 7}),
                       doctest::Contains("cross_entropy: row 1 has target 7, outside [0, 5) for logits (2, 5)"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(x, Targets{-1, 0}),
                       doctest::Contains("cross_entropy: row 0 has target -1, outside [0, 5) for logits (2, 5) "
                                         "(rows whose target is ignore_index = -100 are skipped)"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(x, Targets{1, 2, 3}),
                       doctest::Contains("cross_entropy: got 3 targets for logits (2, 5), which have 2 rows"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(x, Targets{1, 2}, 1.5f),
                       doctest::Contains("cross_entropy: label_smoothing must be in [0, 1], got 1.5"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(Var(), Targets{}), doctest::Contains("cross_entropy: input 'logits' is undefined"), Error);
  tape().reset();
}
