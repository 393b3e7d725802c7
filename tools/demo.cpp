// `nanoattn demo`: trains a 2-layer MLP on a toy task (three interleaved spirals) with the
// tape and plain SGD with momentum, printing a falling loss. A smoke test of the whole engine
// until the trainer exists.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "commands.h"
#include "nanoattn/core.h"
#include "nanoattn/ops.h"

namespace na::cli {

namespace {

struct Spirals {
  Tensor points;                 // (N, 2)
  std::vector<int32_t> labels;   // N in [0, 3)
};

// Three arms of 2-D points, each a class; noise from the counter-based RNG.
Spirals make_spirals(int per_class, uint64_t seed) {
  const int classes = 3, n = per_class * classes;
  Spirals s{Tensor::empty({n, 2}), std::vector<int32_t>(n)};
  Tensor noise = Tensor::empty({n});
  fill_normal(noise, Rng::mix(seed, 1), 0.0f, 0.2f);
  for (int c = 0; c < classes; ++c)
    for (int i = 0; i < per_class; ++i) {
      int k = c * per_class + i;
      float r = static_cast<float>(i) / per_class;
      float angle = 4.0f * c + 4.0f * r + noise[k];
      s.points[2 * k] = r * std::sin(angle);
      s.points[2 * k + 1] = r * std::cos(angle);
      s.labels[k] = c;
    }
  return s;
}

Parameter init_param(const char* name, Shape shape, float stddev, uint64_t key) {
  Tensor t = Tensor::empty(shape);
  fill_normal(t, key, 0.0f, stddev);
  return Parameter(name, t);
}

void run_demo(int steps, float lr, uint64_t seed, int threads) {
  set_num_threads(threads);
  const int hidden = 64;
  Spirals data = make_spirals(200, seed);
  Rng rng(seed);
  std::vector<Parameter> params;
  params.push_back(init_param("fc1.weight", {hidden, 2}, 1.0f, rng.next_key()));
  params.push_back(Parameter("fc1.bias", Tensor::zeros({hidden})));
  params.push_back(init_param("fc2.weight", {3, hidden}, 1.0f / std::sqrt(float(hidden)), rng.next_key()));
  params.push_back(Parameter("fc2.bias", Tensor::zeros({3})));
  std::vector<Tensor> velocity;
  for (const Parameter& p : params) velocity.push_back(Tensor::zeros(p.value().shape()));

  std::printf("demo: 2-layer MLP (2 -> %d -> 3) on %lld spiral points, SGD lr %.2f momentum 0.9\n",
              hidden, static_cast<long long>(data.labels.size()), lr);
  auto start = std::chrono::steady_clock::now();
  float first = 0, last = 0;
  for (int step = 1; step <= steps; ++step) {
    Var x = tape().leaf(data.points);
    Var h = relu(linear(x, params[0], params[1]));
    Var logits = linear(h, params[2], params[3]);
    Var loss = cross_entropy(logits, data.labels);
    tape().backward(loss);
    last = loss.value().item();
    if (step == 1) first = last;
    if (step == 1 || step % (steps / 10 > 0 ? steps / 10 : 1) == 0) {
      int correct = 0;
      const Tensor& l = logits.value();
      for (size_t i = 0; i < data.labels.size(); ++i) {
        const float* row = l.data() + 3 * i;
        int best = row[1] > row[0] ? 1 : 0;
        if (row[2] > row[best]) best = 2;
        correct += best == data.labels[i];
      }
      std::printf("step %4d  loss %.4f  accuracy %5.1f%%\n", step, last,
                  100.0 * correct / data.labels.size());
    }
    for (size_t i = 0; i < params.size(); ++i) {  // SGD with momentum, then zero the gradient
      const Tensor &w = params[i].value(), &g = params[i].grad(), &v = velocity[i];
      for (int64_t j = 0; j < w.numel(); ++j) {
        v[j] = 0.9f * v[j] + g[j];
        w[j] -= lr * v[j];
      }
      params[i].zero_grad();
    }
    tape().reset();
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("demo: loss %.4f -> %.4f in %d steps, %.2f s\n", first, last, steps, secs);
  if (!(last < first)) throw Error("demo", "the loss did not fall");
}

}  // namespace

void add_demo_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("demo", "Train a small MLP on a toy task and print the loss");
  auto steps = std::make_shared<int>(500);
  auto lr = std::make_shared<float>(0.1f);
  auto seed = std::make_shared<uint64_t>(1);
  auto threads = std::make_shared<int>(0);
  cmd->add_option("--steps", *steps, "training steps")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--lr", *lr, "learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--seed", *seed, "random seed")->capture_default_str();
  cmd->add_option("--threads", *threads, "worker threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  cmd->callback([=] { run_demo(*steps, *lr, *seed, *threads); });
}

}  // namespace na::cli
