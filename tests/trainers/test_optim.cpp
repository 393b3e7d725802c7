#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <numbers>
#include <vector>

#include "nanoattn/error.h"
#include "nanoattn/parallel.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "optim/sgd.h"

using namespace na;

namespace {

// A smooth, step-dependent pattern so every element and every step sees a different value.
float wave(int64_t j, int salt) { return static_cast<float>(std::sin(0.7 * j + 1.3 * salt) * (1.0 + 0.1 * salt)); }

std::unique_ptr<Parameter> make_param(const std::string& name, const Shape& shape, int salt) {
  Tensor t = Tensor::empty(shape);
  for (int64_t j = 0; j < t.numel(); ++j) t[j] = wave(j, salt);
  return std::make_unique<Parameter>(name, t);
}

void set_grads(const std::vector<Parameter*>& ps, int step) {
  for (size_t i = 0; i < ps.size(); ++i)
    for (int64_t j = 0; j < ps[i]->grad().numel(); ++j) ps[i]->grad()[j] = 0.5f * wave(j, 10 * step + static_cast<int>(i) + 3);
}

std::vector<double> to_double(const Tensor& t) {
  std::vector<double> out(t.numel());
  for (int64_t j = 0; j < t.numel(); ++j) out[j] = t[j];
  return out;
}

// The largest |float32 parameter - double reference| over all parameters, divided by the
// reference's largest |value|: a few float32 roundings per step (u = 6e-8) stay far below 1e-6.
double max_rel_diff(const std::vector<Parameter*>& ps, const std::vector<std::vector<double>>& want) {
  double worst = 0.0, scale = 0.0;
  for (size_t i = 0; i < want.size(); ++i)
    for (size_t j = 0; j < want[i].size(); ++j) {
      worst = std::max(worst, std::abs(ps[i]->value()[j] - want[i][j]));
      scale = std::max(scale, std::abs(want[i][j]));
    }
  return worst / scale;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.data(), b.data(), a.numel() * sizeof(float)) == 0;
}

// The charlm_tiny.h5 fixture's AdamW settings.
AdamWConfig fixture_adamw() {
  AdamWConfig c;
  c.beta1 = 0.9f;
  c.beta2 = 0.99f;
  c.eps = 1e-8f;
  c.weight_decay = 0.1f;
  return c;
}

}  // namespace

TEST_CASE("AdamW: three steps match PyTorch's formula in double (decay on 2-D only)") {
  auto w = make_param("w", {3, 4}, 1);
  auto b = make_param("b", {4}, 2);
  std::vector<Parameter*> ps{w.get(), b.get()};
  const AdamWConfig cfg = fixture_adamw();
  AdamW opt(ps, cfg);
  CHECK(opt.decays(0));
  CHECK_FALSE(opt.decays(1));

  const double lr = 1e-2, b1 = 0.9, b2 = 0.99, eps = 1e-8, wd = 0.1;
  std::vector<std::vector<double>> p{to_double(w->value()), to_double(b->value())};
  std::vector<std::vector<double>> m(2), v(2);
  for (int i = 0; i < 2; ++i) m[i].assign(p[i].size(), 0.0), v[i].assign(p[i].size(), 0.0);

  for (int t = 1; t <= 3; ++t) {
    set_grads(ps, t);
    for (int i = 0; i < 2; ++i) {
      const bool decay = i == 0;
      for (size_t j = 0; j < p[i].size(); ++j) {
        const double g = ps[i]->grad()[j];
        if (decay) p[i][j] -= lr * wd * p[i][j];
        m[i][j] = b1 * m[i][j] + (1 - b1) * g;
        v[i][j] = b2 * v[i][j] + (1 - b2) * g * g;
        const double mhat = m[i][j] / (1 - std::pow(b1, t));
        const double vhat = v[i][j] / (1 - std::pow(b2, t));
        p[i][j] -= lr * mhat / (std::sqrt(vhat) + eps);
      }
    }
    opt.step(static_cast<float>(lr));
    CHECK(opt.step_count() == t);
  }
  CHECK(max_rel_diff(ps, p) < 1e-6);
}

TEST_CASE("AdamW: step leaves gradients; zero_grad clears them; a custom decay rule is honoured") {
  auto w = make_param("w", {2, 2}, 1);
  std::vector<Parameter*> ps{w.get()};
  AdamWConfig cfg;
  cfg.decay = [](const Parameter&) { return false; };
  AdamW opt(ps, cfg);
  CHECK_FALSE(opt.decays(0));
  set_grads(ps, 1);
  const std::vector<float> g = w->grad().to_vector();
  opt.step(1e-3f);
  CHECK(w->grad().to_vector() == g);
  opt.zero_grad();
  for (float x : w->grad().to_vector()) CHECK(x == 0.0f);
}

TEST_CASE("SGD: momentum and weight decay match PyTorch's formula in double") {
  auto w = make_param("w", {2, 3}, 4);
  auto b = make_param("b", {3}, 5);
  std::vector<Parameter*> ps{w.get(), b.get()};
  SGDConfig cfg;
  cfg.momentum = 0.9f;
  cfg.weight_decay = 0.01f;
  SGD opt(ps, cfg);
  CHECK(opt.state().size() == 2);
  CHECK(opt.state()[0].first == "w/momentum");

  const double lr = 0.1, mu = 0.9, wd = 0.01;
  std::vector<std::vector<double>> p{to_double(w->value()), to_double(b->value())};
  std::vector<std::vector<double>> buf{std::vector<double>(6, 0.0), std::vector<double>(3, 0.0)};
  for (int t = 1; t <= 4; ++t) {
    set_grads(ps, t);
    for (int i = 0; i < 2; ++i)
      for (size_t j = 0; j < p[i].size(); ++j) {
        double g = ps[i]->grad()[j];
        if (i == 0) g += wd * p[i][j];  // decay on the matrix only (the default rule)
        buf[i][j] = t == 1 ? g : mu * buf[i][j] + g;
        p[i][j] -= lr * buf[i][j];
      }
    opt.step(static_cast<float>(lr));
  }
  CHECK(max_rel_diff(ps, p) < 1e-6);

  SGD plain(ps);  // no momentum: no buffers
  CHECK(plain.state().empty());
}

TEST_CASE("schedule: warmup then cosine to min_ratio * max_lr, constant after; steps count from 0") {
  const double max_lr = 1e-2;
  WarmupCosine s(max_lr, 10, 110, 0.1);
  CHECK(s.lr(0) == 0.0);
  CHECK(s.lr(1) == doctest::Approx(max_lr * 0.1));
  CHECK(s.lr(9) == doctest::Approx(max_lr * 0.9));
  CHECK(s.lr(10) == doctest::Approx(max_lr));
  CHECK(s.lr(60) == doctest::Approx(0.5 * (max_lr + 0.1 * max_lr)));  // halfway down the cosine
  CHECK(s.lr(35) == doctest::Approx(1e-3 + 9e-3 * 0.5 * (1 + std::cos(std::numbers::pi * 0.25))));
  CHECK(s.lr(110) == doctest::Approx(1e-3));
  CHECK(s.lr(1000) == doctest::Approx(1e-3));
  for (int64_t t = 10; t < 110; ++t) CHECK(s.lr(t + 1) <= s.lr(t));

  WarmupCosine no_warmup(1.0, 0, 4);
  CHECK(no_warmup.lr(0) == 1.0);
  CHECK(no_warmup.lr(4) == 0.0);

  ConstantSchedule c(3e-4);
  CHECK(c.lr(0) == 3e-4);
  CHECK(c.lr(123456) == 3e-4);

  CHECK_THROWS_WITH_AS(WarmupCosine(1.0, 10, 5), "warmup-cosine schedule: total steps 5 is less than warmup 10", Error);
}

TEST_CASE("clip_grad_norm: norm in double, scales only above max_norm, same bits for 1 and 2 threads") {
  auto big = make_param("big", {300, 257}, 6);  // several chunks, so the reduction tree matters
  auto small = make_param("small", {7}, 7);
  std::vector<Parameter*> ps{big.get(), small.get()};
  set_grads(ps, 1);
  double want = 0.0;
  for (Parameter* p : ps)
    for (int64_t j = 0; j < p->grad().numel(); ++j) want += static_cast<double>(p->grad()[j]) * p->grad()[j];
  want = std::sqrt(want);

  const std::vector<float> g0 = big->grad().to_vector();
  CHECK(clip_grad_norm(ps, want * 2) == doctest::Approx(want).epsilon(1e-12));
  CHECK(big->grad().to_vector() == g0);  // below max_norm: untouched

  set_num_threads(1);
  const double n1 = clip_grad_norm(ps, 1.0);
  const Tensor clipped1 = big->grad().clone();
  set_grads(ps, 1);
  set_num_threads(2);
  const double n2 = clip_grad_norm(ps, 1.0);
  set_num_threads(0);
  CHECK(std::memcmp(&n1, &n2, sizeof n1) == 0);
  CHECK(same_bits(clipped1, big->grad()));
  CHECK(n1 == doctest::Approx(want).epsilon(1e-12));
  CHECK(grad_norm(ps) == doctest::Approx(1.0).epsilon(1e-5));  // now at max_norm
  const float c = static_cast<float>(1.0 / (want + 1e-6));
  CHECK(big->grad()[5] == g0[5] * c);
}

TEST_CASE("AdamW: the same bits for 1 and 2 threads") {
  Tensor after[2];
  for (int k = 0; k < 2; ++k) {
    auto w = make_param("w", {200, 300}, 8);
    std::vector<Parameter*> ps{w.get()};
    set_num_threads(k + 1);
    AdamW opt(ps, fixture_adamw());
    for (int t = 1; t <= 2; ++t) set_grads(ps, t), opt.step(1e-2f);
    after[k] = w->value().clone();
  }
  set_num_threads(0);
  CHECK(same_bits(after[0], after[1]));
}

TEST_CASE("optimizer state: save after 2 steps, restore into fresh objects, continue bitwise like an uninterrupted run") {
  auto run = [](int steps, std::unique_ptr<Parameter>& w, std::unique_ptr<Parameter>& b, AdamW& opt, int first) {
    std::vector<Parameter*> ps{w.get(), b.get()};
    for (int t = first; t < first + steps; ++t) set_grads(ps, t), opt.step(static_cast<float>(1e-2 / t));
  };
  auto w1 = make_param("w", {4, 5}, 1), b1 = make_param("b", {5}, 2);
  AdamW straight({w1.get(), b1.get()}, fixture_adamw());
  run(5, w1, b1, straight, 1);

  auto w2 = make_param("w", {4, 5}, 1), b2 = make_param("b", {5}, 2);
  OptimState saved;
  int64_t saved_steps = 0;
  Tensor saved_w, saved_b;
  {
    AdamW first({w2.get(), b2.get()}, fixture_adamw());
    run(2, w2, b2, first, 1);
    saved = first.state();
    saved_steps = first.step_count();
    saved_w = w2->value().clone(), saved_b = b2->value().clone();
  }
  CHECK(saved.size() == 4);
  CHECK(saved[0].first == "w/m");
  CHECK(saved[1].first == "w/v");
  CHECK(saved[3].first == "b/v");
  auto w3 = std::make_unique<Parameter>("w", saved_w), b3 = std::make_unique<Parameter>("b", saved_b);
  AdamW resumed({w3.get(), b3.get()}, fixture_adamw());
  resumed.load_state(saved, saved_steps);
  CHECK(resumed.step_count() == 2);
  run(3, w3, b3, resumed, 3);
  CHECK(same_bits(w1->value(), w3->value()));
  CHECK(same_bits(b1->value(), b3->value()));
  CHECK(resumed.step_count() == straight.step_count());
}

TEST_CASE("optimizer state: wrong shape, unknown, duplicate or missing names are clear errors") {
  auto w = make_param("w", {2, 3}, 1), b = make_param("b", {3}, 2);
  AdamW opt({w.get(), b.get()});
  const OptimState good = opt.state();

  OptimState bad_shape = good;
  bad_shape[0].second = Tensor::zeros({3, 2});
  CHECK_THROWS_WITH_AS(opt.load_state(bad_shape, 1),
                       "optimizer state: 'w/m' has shape (3, 2) but parameter 'w' has shape (2, 3)", Error);
  OptimState bad_name = good;
  bad_name[2].first = "bias/m";
  CHECK_THROWS_WITH_AS(opt.load_state(bad_name, 1),
                       "optimizer state: 'bias/m' matches no parameter/buffer of this optimizer", Error);
  OptimState missing(good.begin(), good.end() - 1);
  CHECK_THROWS_WITH_AS(opt.load_state(missing, 1), "optimizer state: missing 'b/v' for parameter 'b'", Error);
  OptimState twice = good;
  twice.push_back(good[0]);
  CHECK_THROWS_WITH_AS(opt.load_state(twice, 1), "optimizer state: 'w/m' appears twice", Error);
  CHECK(opt.step_count() == 0);  // failed loads change nothing

  CHECK_THROWS_WITH_AS(AdamW({w.get(), w.get()}), "optimizer: parameter 'w' is listed twice", Error);
}
