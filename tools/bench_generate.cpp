// `nanoattn bench generate experiment.yaml`: sampling speed of each run, batch B, after a prompt
// of P tokens: N new tokens drawn one at a time, token by token through RNN states or KV caches
// (mode cached), or by re-running the parallel forward on the window so far (mode parallel, the
// uncached path). Reports tokens/s, the median time per token in each tenth of the generated
// length (flat for an RNN, growing for a KV cache) and the state's bytes. Weights are a random
// init (they do not change the speed); the prompt is the corpus's first P tokens.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "bench_options.h"
#include "commands.h"
#include "data/corpus.h"
#include "experiment/experiment.h"
#include "model.h"
#include "nanoattn/core.h"
#include "nanoattn/rng.h"
#include "nanoattn/stop.h"
#include "plugin_loader.h"
#include "recurrent.h"
#include "train/sample.h"

namespace na::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct GenerateBenchArgs {
  std::string experiment, mode = "auto";
  std::vector<std::string> sets, only;
  int64_t prompt = 64, tokens = 1000, batch = 1, threads = -1, top_k = 0;
  bool json = false;
};

// FNV-1a of the generated ids: equal for equal token streams (cached vs parallel, thread counts).
uint64_t fnv1a(const std::vector<int32_t>& ids) {
  uint64_t h = 1469598103934665603ull;
  for (int32_t id : ids)
    for (int i = 0; i < 4; ++i) h = (h ^ ((static_cast<uint32_t>(id) >> (8 * i)) & 0xffu)) * 1099511628211ull;
  return h;
}

// Next-token logits of B sequences, one token at a time.
class Generator {
 public:
  virtual ~Generator() = default;
  // Feeds the next token of each sequence; returns the logits after it (B x V, row-major).
  virtual const float* feed(const std::vector<int32_t>& next) = 0;
  virtual size_t state_bytes() const { return 0; }
};

// Token by token through the model's step (RNN states and KV caches).
class CachedGenerator : public Generator {
 public:
  CachedGenerator(const Model& m, int64_t B) : model_(m), state_(m.begin_generation(B)), last_(B * m.dims().vocab) {}
  const float* feed(const std::vector<int32_t>& next) override {
    Var logits = model_.step(next, *state_);  // (B, 1, V)
    std::copy(logits.value().data(), logits.value().data() + last_.size(), last_.begin());
    tape().reset();
    return last_.data();
  }
  size_t state_bytes() const override { return state_->bytes(); }

 private:
  const Model& model_;
  std::unique_ptr<RecurrentState> state_;
  std::vector<float> last_;
};

// The uncached path: the parallel forward over the last max_len tokens of each sequence.
class ParallelGenerator : public Generator {
 public:
  ParallelGenerator(const Model& m, int64_t B) : model_(m), B_(B), text_(B), last_(B * m.dims().vocab) {}
  const float* feed(const std::vector<int32_t>& next) override {
    const int64_t V = model_.dims().vocab;
    for (int64_t b = 0; b < B_; ++b) text_[b].push_back(next[b]);
    const int64_t n = static_cast<int64_t>(text_[0].size()), T = std::min(n, model_.dims().max_len);
    std::vector<int32_t> ids(B_ * T);
    for (int64_t b = 0; b < B_; ++b) std::copy(text_[b].end() - T, text_[b].end(), ids.begin() + b * T);
    Var logits = model_.forward(ids, B_, T);  // (B, T, V): the last row of each is next
    for (int64_t b = 0; b < B_; ++b)
      std::copy_n(logits.value().data() + (b * T + T - 1) * V, V, last_.begin() + b * V);
    tape().reset();
    return last_.data();
  }

 private:
  const Model& model_;
  int64_t B_;
  std::vector<std::vector<int32_t>> text_;
  std::vector<float> last_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

nlohmann::json bench_run(const RunConfig& r, const GenerateBenchArgs& a) {
  Tape run_tape;
  TapeScope run_scope(run_tape);
  set_num_threads(static_cast<int>(a.threads >= 0 ? a.threads : r.threads));
  const Corpus corpus = load_corpus(r.data);
  const PluginRegistry plugins(r.plugin_paths);
  const Model model(r.model, r.where, static_cast<int64_t>(corpus.tokenizer.size()), plugins, r.seed);
  const std::string where = cat(r.where, ": run '", r.name, "'");
  NA_CHECK(model.dims().causal, where, "the model is bidirectional (causal: false): it cannot generate text");
  std::string mode = a.mode;
  if (mode == "auto") mode = model.generation_unsupported().empty() ? "cached" : "parallel";
  if (mode == "cached")
    NA_CHECK(model.generation_unsupported().empty(), where, "--mode cached: ", model.generation_unsupported(),
             " (use --mode parallel)");
  NA_CHECK(static_cast<int64_t>(corpus.train.size()) >= a.prompt, where, "--prompt ", a.prompt,
           " is longer than the corpus's training split (", corpus.train.size(), " tokens)");
  const int64_t B = a.batch, V = model.dims().vocab, P = a.prompt, N = a.tokens;

  std::unique_ptr<Generator> gen;
  if (mode == "cached")
    gen = std::make_unique<CachedGenerator>(model, B);
  else
    gen = std::make_unique<ParallelGenerator>(model, B);
  NoGrad no_grad;
  std::vector<int32_t> next(B), generated;
  generated.reserve(B * N);
  const float* logits = nullptr;
  // Past the learned positions, the step's own error says what to change; add the bench's view.
  auto feed = [&](int64_t pos) {
    try {
      logits = gen->feed(next);
    } catch (const Error& e) {
      throw Error(where, cat("at position ", pos, " of --prompt ", P, " + --tokens ", N, ": ", e.what(),
                             mode == "cached" ? " (e.g. --set model.max_len=" + std::to_string(P + N) + ")" : ""));
    }
  };
  const auto t_prompt = Clock::now();
  for (int64_t i = 0; i < P; ++i) {
    std::fill(next.begin(), next.end(), corpus.train[i]);
    feed(i);
  }
  const double prompt_s = std::chrono::duration<double>(Clock::now() - t_prompt).count();
  const size_t bytes_after_prompt = gen->state_bytes();

  std::vector<double> step_s(N);
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    if ((n & 255) == 0) check_stop("benchmarking generation");
    const auto s = Clock::now();
    for (int64_t b = 0; b < B; ++b) {
      const double u = uniform01(philox(r.seed, static_cast<uint64_t>(n * B + b))[0]);
      next[b] = draw_token(logits + b * V, V, 1.0, a.top_k, u);
    }
    feed(P + n);
    step_s[n] = std::chrono::duration<double>(Clock::now() - s).count();
    total += step_s[n];
    generated.insert(generated.end(), next.begin(), next.end());
  }
  // Median µs per token in each tenth of the generated length.
  std::vector<double> deciles;
  for (int d = 0; d < 10; ++d)
    deciles.push_back(1e6 * median({step_s.begin() + d * N / 10, step_s.begin() + (d + 1) * N / 10}));
  const size_t bytes = gen->state_bytes();
  const int64_t positions = P + N;
  nlohmann::json j = {{"experiment", r.experiment}, {"run", r.name}, {"mode", mode},
                      {"params", model.params().count()}, {"threads", num_threads()}, {"batch", B},
                      {"prompt", P}, {"tokens", N}, {"tokens_per_s", double(B * N) / total},
                      {"us_per_token", 1e6 * total / double(N)}, {"us_per_token_deciles", deciles},
                      {"prompt_s", prompt_s}, {"seconds", total}, {"state_bytes", bytes},
                      {"state_bytes_after_prompt", bytes_after_prompt},
                      {"state_bytes_per_token", double(bytes - bytes_after_prompt) / double(N)},
                      {"tokens_fnv1a", cat(fnv1a(generated))}, {"openblas_kernels", blas_kernels()}};
  if (!a.json) {
    std::printf("bench generate %s/%s: %lld parameters, %s mode, batch %lld, prompt %lld + %lld new tokens, %d "
                "threads\n", r.experiment.c_str(), r.name.c_str(), (long long)model.params().count(), mode.c_str(),
                (long long)B, (long long)P, (long long)N, num_threads());
    std::printf("  tokens/s      %.0f (batch x new tokens / time; the prompt took %.3f s)\n", double(B * N) / total,
                prompt_s);
    std::printf("  us/token      %.1f mean; median by tenth of the generated length:\n   ", 1e6 * total / double(N));
    for (double d : deciles) std::printf(" %.1f", d);
    std::printf("\n  state         %zu bytes after %lld positions (%zu after the prompt; %.0f bytes per new token)\n",
                bytes, (long long)positions, bytes_after_prompt, double(bytes - bytes_after_prompt) / double(N));
  }
  return j;
}

void run_generate_bench(const GenerateBenchArgs& a) {
  NA_CHECK(a.tokens >= 10, "bench generate", "--tokens must be >= 10 (times are reported per tenth), got ",
           a.tokens);
  NA_CHECK(a.prompt >= 1, "bench generate", "--prompt must be >= 1 token, got ", a.prompt);
  NA_CHECK(a.batch >= 1, "bench generate", "--batch must be >= 1, got ", a.batch);
  const Experiment exp = load_experiment(a.experiment, a.sets);
  std::string names;
  for (const RunConfig& r : exp.runs) names += (names.empty() ? "" : ", ") + r.name;
  for (const std::string& o : a.only)
    NA_CHECK(std::any_of(exp.runs.begin(), exp.runs.end(), [&](const RunConfig& r) { return r.name == o; }),
             a.experiment, "--only ", o, ": no such run; the runs are ", names);
  for (const RunConfig& r : exp.runs) {
    if (!a.only.empty() && std::find(a.only.begin(), a.only.end(), r.name) == a.only.end()) continue;
    nlohmann::json j = bench_run(r, a);
    if (a.json) std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  }
}

}  // namespace

void add_generate_bench(CLI::App& bench) {
  auto a = std::make_shared<GenerateBenchArgs>();
  auto* cmd = bench.add_subcommand(
      "generate", "Sampling speed of each run: tokens/s, us/token by tenth of the generated length, state bytes");
  cmd->add_option("experiment", a->experiment, "experiment YAML file (random weights: they do not change the speed)")
      ->required();
  cmd->add_option("--prompt", a->prompt, "prompt tokens (the corpus's first ones), fed before timing")
      ->transform(integer_option<int64_t>())->capture_default_str();
  cmd->add_option("--tokens", a->tokens, "new tokens to generate and time, one at a time")
      ->transform(integer_option<int64_t>())->capture_default_str();
  cmd->add_option("--batch", a->batch, "sequences generated together")
      ->transform(integer_option<int64_t>())->capture_default_str();
  cmd->add_option("--threads", a->threads, "worker threads (default: the run's `threads`; 0 = all cores)")
      ->transform(integer_option<int64_t>());
  cmd->add_option("--top-k", a->top_k, "sample among the k likeliest tokens (0 = all)")
      ->transform(integer_option<int64_t>())->capture_default_str();
  cmd->add_option("--mode", a->mode,
                  "cached: token by token with RNN states or KV caches; parallel: re-run the forward on the window "
                  "so far (no cache); auto: cached when every block allows it")
      ->check(CLI::IsMember({"auto", "cached", "parallel"}))->capture_default_str();
  cmd->add_option("--only", a->only, "bench only the named runs (repeatable)");
  cmd->add_option("--set", a->sets, "override a setting, as for `nanoattn run` (repeatable)");
  cmd->add_flag("--json", a->json, "one JSON line per run instead of text");
  cmd->callback([a] { run_generate_bench(*a); });
}

}  // namespace na::cli
