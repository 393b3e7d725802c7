// distill_loss: values against an independent float64 reference written from the definition
// (probabilities raised to 1/tau and renormalised, the rest bucket as a plain sum), gradients by
// finite differences, alpha = 1 against cross_entropy bit for bit. Tolerances: gradcheck
// defaults; values within 2e-6 relative of the reference.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "gradcheck.h"
#include "nanoattn/ops.h"

using namespace na;
using namespace na::testing;

namespace {

using Targets = std::vector<int32_t>;

// A teacher as the op takes it, owning its rows.
struct Teacher {
  std::vector<float> lp;
  std::vector<int32_t> ids;
  int64_t k = 0;
  TeacherRows rows() const { return {lp, ids, k}; }
};

// Full log-probabilities of random logits, row by row (float64 log_softmax).
Teacher full_teacher(int64_t N, int64_t V, uint64_t seed, float spread = 3.0f) {
  Tensor z = random_tensor({N, V}, seed, -spread, spread);
  Teacher t;
  for (int64_t r = 0; r < N; ++r) {
    double m = -1e30, sum = 0;
    for (int64_t v = 0; v < V; ++v) m = std::max(m, double(z[r * V + v]));
    for (int64_t v = 0; v < V; ++v) sum += std::exp(z[r * V + v] - m);
    for (int64_t v = 0; v < V; ++v) t.lp.push_back(static_cast<float>(z[r * V + v] - m - std::log(sum)));
  }
  return t;
}

// The k likeliest of a full teacher (ids by decreasing probability).
Teacher top_k_of(const Teacher& full, int64_t N, int64_t V, int64_t k) {
  Teacher t;
  t.k = k;
  for (int64_t r = 0; r < N; ++r) {
    std::vector<int32_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    const float* row = full.lp.data() + r * V;
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
    for (int64_t j = 0; j < k; ++j) {
      t.ids.push_back(order[j]);
      t.lp.push_back(row[order[j]]);
    }
  }
  return t;
}

// The definition, in float64 and without logarithm tricks.
double reference(const Tensor& logits, const Targets& targets, const Teacher& t, double alpha, double tau) {
  const int64_t V = logits.shape()[-1], N = logits.numel() / V;
  double total = 0;
  for (int64_t r = 0; r < N; ++r) {
    std::vector<double> p(V);
    double z = 0;
    for (int64_t v = 0; v < V; ++v) z += p[v] = std::exp(double(logits[r * V + v]));
    for (double& x : p) x /= z;
    std::vector<double> P, Q;  // coarse student and teacher probabilities
    if (t.k == 0) {
      P = p;
      for (int64_t v = 0; v < V; ++v) Q.push_back(std::exp(double(t.lp[r * V + v])));
    } else {
      std::vector<bool> in(V);
      double q_top = 0;
      for (int64_t j = 0; j < t.k; ++j) {
        const int32_t id = t.ids[r * t.k + j];
        in[id] = true;
        P.push_back(p[id]);
        Q.push_back(std::exp(double(t.lp[r * t.k + j])));
        q_top += Q.back();
      }
      if (t.k < V) {
        double p_rest = 0;
        for (int64_t v = 0; v < V; ++v)
          if (!in[v]) p_rest += p[v];
        P.push_back(p_rest);
        Q.push_back(std::max(0.0, 1.0 - q_top));
      }
    }
    double sp = 0, sq = 0;
    for (size_t c = 0; c < P.size(); ++c) sp += P[c] = std::pow(P[c], 1 / tau), sq += Q[c] = std::pow(Q[c], 1 / tau);
    double kl = 0;
    for (size_t c = 0; c < P.size(); ++c)
      if (Q[c] > 0) kl += Q[c] / sq * std::log((Q[c] / sq) / (P[c] / sp));
    total += alpha * -std::log(p[targets[r]]) + (1 - alpha) * tau * tau * kl;
  }
  return total / N;
}

Targets some_targets(int64_t N, int32_t V) {
  Targets t(N);
  for (int64_t r = 0; r < N; ++r) t[r] = static_cast<int32_t>((r * 5 + 2) % V);
  return t;
}

struct Case {
  const char* what;
  int64_t k;
  float alpha, tau;
};
const Case kCases[] = {{"full", 0, 0.5f, 2.0f},    {"full", 0, 0.0f, 1.0f},    {"full", 0, 0.3f, 4.0f},
                       {"full", 0, 0.9f, 0.5f},    {"top-3", 3, 0.5f, 2.0f},   {"top-3", 3, 0.0f, 3.0f},
                       {"top-1", 1, 0.2f, 1.0f},   {"top-6", 6, 0.7f, 0.7f},   {"top-7 = V", 7, 0.4f, 2.0f}};

}  // namespace

TEST_CASE("distill_loss: values match the definition (float64), full and top-k teachers") {
  const int64_t N = 6, V = 7;
  const Tensor logits = random_tensor({N, V}, 3, -2.5f, 2.5f);
  const Teacher full = full_teacher(N, V, 11);
  const Targets targets = some_targets(N, V);
  for (const Case& c : kCases) {
    CAPTURE(c.what);
    CAPTURE(c.alpha);
    CAPTURE(c.tau);
    const Teacher t = c.k ? top_k_of(full, N, V, c.k) : full;
    DistillParts parts;
    const float got = distill_loss(tape().leaf(logits), targets, t.rows(), c.alpha, c.tau, &parts).value()[0];
    const double want = reference(logits, targets, t, c.alpha, c.tau);
    CHECK(got == doctest::Approx(want).epsilon(2e-6));
    CHECK(parts.ce == doctest::Approx(reference(logits, targets, t, 1.0, c.tau)).epsilon(2e-6));
    // A wrong sign or a dropped tau^2 changes the value: the reference tells them apart here.
    if (c.alpha < 1 && c.tau != 1)
      CHECK(std::abs(want - (c.alpha * parts.ce + (1 - c.alpha) * parts.kl)) > 1e-3 * std::abs(want));
    tape().reset();
  }
}

TEST_CASE("distill_loss: finite-difference gradients, full and top-k teachers, several alpha and tau") {
  const int64_t N = 5, V = 7;
  const Tensor logits = random_tensor({N, V}, 21, -2.0f, 2.0f);
  const Teacher full = full_teacher(N, V, 23);
  const Targets targets = some_targets(N, V);
  for (const Case& c : kCases) {
    CAPTURE(c.what);
    CAPTURE(c.alpha);
    CAPTURE(c.tau);
    const Teacher t = c.k ? top_k_of(full, N, V, c.k) : full;
    CHECK_GRADIENTS([&](const std::vector<Var>& v) { return distill_loss(v[0], targets, t.rows(), c.alpha, c.tau); },
                    {logits});
  }
}

TEST_CASE("distill_loss: a top-k teacher that holds all the mass (rest clamped) stays finite") {
  const int64_t N = 4, V = 6, k = 3;
  Teacher t;
  t.k = k;
  for (int64_t r = 0; r < N; ++r) {
    // 0.5 + 0.3 + 0.2 rounded to float: their sum may pass 1; the rest bucket then gets 0.
    for (int32_t id : {int32_t(r % V), int32_t((r + 2) % V), int32_t((r + 4) % V)}) t.ids.push_back(id);
    for (double p : {0.5, 0.3, 0.2}) t.lp.push_back(static_cast<float>(std::log(p)));
  }
  const Tensor logits = random_tensor({N, V}, 31, -2.0f, 2.0f);
  const Targets targets = some_targets(N, V);
  const float got = distill_loss(tape().leaf(logits), targets, t.rows(), 0.25f, 2.0f).value()[0];
  CHECK(std::isfinite(got));
  CHECK(got == doctest::Approx(reference(logits, targets, t, 0.25, 2.0)).epsilon(2e-6));
  tape().reset();
  CHECK_GRADIENTS([&](const std::vector<Var>& v) { return distill_loss(v[0], targets, t.rows(), 0.25f, 2.0f); },
                  {logits});
}

TEST_CASE("distill_loss: top-k with k = V is the full loss; alpha = 1 is cross_entropy bit for bit") {
  const int64_t N = 300, V = 40;
  const Tensor logits = random_tensor({N, V}, 41, -3.0f, 3.0f);
  const Teacher full = full_teacher(N, V, 43);
  const Teacher all = top_k_of(full, N, V, V);  // the same distribution, columns permuted
  const Targets targets = some_targets(N, V);
  Agreement a = compare([&](const std::vector<Var>& v) { return distill_loss(v[0], targets, all.rows(), 0.3f, 2.0f); },
                        [&](const std::vector<Var>& v) { return distill_loss(v[0], targets, full.rows(), 0.3f, 2.0f); },
                        {logits});
  CHECK(a.out_rel < 1e-6);
  CHECK(a.grad_rel < 1e-6);
  for (const Teacher* t : {&full, &all}) {
    Agreement same = compare([&](const std::vector<Var>& v) { return distill_loss(v[0], targets, t->rows(), 1.0f, 2.0f); },
                             [&](const std::vector<Var>& v) { return cross_entropy(v[0], targets); }, {logits});
    CHECK(same.max_out_diff == 0.0);
    CHECK(same.max_grad_diff == 0.0);
  }
}

TEST_CASE("distill_loss: bitwise identical for 1 thread and all threads") {
  const int64_t N = 2000, V = 50;
  const Teacher full = full_teacher(N, V, 51);
  const Teacher top = top_k_of(full, N, V, 5);
  const Targets targets = some_targets(N, V);
  for (const Teacher* t : {&full, &top})
    CHECK_THREAD_INVARIANT([&](const std::vector<Var>& v) { return distill_loss(v[0], targets, t->rows(), 0.5f, 2.0f); },
                           {random_tensor({N, V}, 53, -3.0f, 3.0f)});
}

TEST_CASE("distill_loss: errors name the op, the row and the values") {
  Var x = tape().leaf(Tensor::zeros({2, 4}));
  const Teacher full = full_teacher(2, 4, 61);
  Teacher top = top_k_of(full, 2, 4, 2);
  const Targets tg{1, 2};
  CHECK_THROWS_WITH_AS(distill_loss(x, tg, full.rows(), 1.5f, 2.0f), doctest::Contains("distill_loss: alpha must be in [0, 1], got 1.5"), Error);
  CHECK_THROWS_WITH_AS(distill_loss(x, tg, full.rows(), 0.5f, 0.0f), doctest::Contains("distill_loss: temperature must be > 0, got 0"), Error);
  CHECK_THROWS_WITH_AS(distill_loss(x, Targets{1, 4}, full.rows(), 0.5f, 2.0f),
                       doctest::Contains("distill_loss: row 1 has target 4, outside [0, 4)"), Error);
  top.ids[3] = top.ids[2];
  CHECK_THROWS_WITH_AS(distill_loss(x, tg, top.rows(), 0.5f, 2.0f),
                       doctest::Contains("teacher row 1 lists id"), Error);
  top.ids[3] = 9;
  CHECK_THROWS_WITH_AS(distill_loss(x, tg, top.rows(), 0.5f, 2.0f),
                       doctest::Contains("teacher row 1 has id 9, outside [0, 4)"), Error);
  Teacher short_rows = full;
  short_rows.lp.pop_back();
  CHECK_THROWS_WITH_AS(distill_loss(x, tg, short_rows.rows(), 0.5f, 2.0f),
                       doctest::Contains("teacher log-probs have 7 values, expected 2 x 4 (rows x V) for logits (2, 4)"), Error);
  Teacher nan_row = full;
  nan_row.lp[5] = NAN;
  CHECK_THROWS_WITH_AS(distill_loss(x, tg, nan_row.rows(), 0.5f, 2.0f), doctest::Contains("teacher row 1 column 1"), Error);
  tape().reset();
}
