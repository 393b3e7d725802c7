// `nanoattn bench train experiment.yaml`: training throughput of each run (forward + backward +
// clipping + optimizer step), step-time median, peak RSS, model FLOP utilisation against an
// sgemm measured in the same process, and with --profile where the step goes by op and block.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "bench_options.h"
#include "commands.h"
#include "cost_model.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "experiment/experiment.h"
#include "model.h"
#include "nanoattn/core.h"
#include "plugin_loader.h"
#include "recompute.h"
#include "scratch_tape.h"
#include "train/train_step.h"

namespace na::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct TrainBenchArgs {
  std::string experiment;
  std::vector<std::string> sets, only;
  int64_t steps = 20, warmup = 3;
  bool profile = false, json = false;
  std::string against_kernels;  // also time each run in a child process with these OpenBLAS kernels
};

// `nanoattn bench train <experiment> --only <run> --json ...` in a child process with
// OPENBLAS_CORETYPE=kernels (OpenBLAS picks its kernels once per process): its JSON line.
nlohmann::json bench_child(const TrainBenchArgs& a, const std::string& run, const std::string& kernels) {
  std::vector<std::string> args = {"/proc/self/exe", "bench", "train", a.experiment, "--only", run, "--json",
                                   "--steps", std::to_string(a.steps), "--warmup", std::to_string(a.warmup)};
  for (const std::string& s : a.sets) args.insert(args.end(), {"--set", s});
  int out[2];
  NA_CHECK(pipe(out) == 0, "bench train", "cannot make a pipe: ", std::strerror(errno));
  const pid_t pid = fork();
  NA_CHECK(pid >= 0, "bench train", "cannot start a process: ", std::strerror(errno));
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    setenv("OPENBLAS_CORETYPE", kernels.c_str(), 1);
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  NA_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "bench train --against-kernels " + kernels,
           "the child process failed (its errors are above)");
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error("bench train --against-kernels " + kernels, cat("unreadable output of the child process: ", e.what()));
  }
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The tape memory a step needs: the peak bytes in use of the tape's arena and of the scratch
// tapes (recomputed blocks, reversible stacks), and what their arenas hold (whole chunks).
struct TapeMemory {
  double arena_mib, scratch_mib, held_mib;
  double total() const { return arena_mib + scratch_mib; }
};
TapeMemory tape_memory() {
  const double mib = 1.0 / 1048576.0;
  return {tape().arena().high_water() * mib, scratch_tape_bytes() * mib,
          (tape().arena().capacity() + scratch_tape_capacity()) * mib};
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;  // Linux reports KiB
}

struct Timing {
  double tokens_per_s = 0, step_median_s = 0;
};

Timing time_steps(const Model& model, const std::vector<Parameter*>& params, Optimizer& opt, const RunConfig& r,
                  Batcher& batcher, int64_t steps) {
  if (steps == 0) return {};  // --warmup 0: nothing to time (the median below needs a step)
  std::vector<double> t;
  double total = 0;
  for (int64_t i = 0; i < steps; ++i) {
    check_stop("benchmarking training");
    const Batch batch = batcher.next(r.train.batch_size, r.train.seq_len);
    const auto s = Clock::now();
    train_step(model, params, opt, r.train, batch, Rng::mix(r.seed, uint64_t(i)), r.train.lr);
    t.push_back(seconds_since(s));
    total += t.back();
  }
  std::sort(t.begin(), t.end());
  return {double(steps * r.train.batch_size * r.train.seq_len) / total, t[t.size() / 2]};
}

void print_profile(const std::vector<profile::Row>& rows, double gemm_s, int64_t steps, double step_s) {
  const double per = 1e3 / double(steps), mib = 1.0 / (1048576.0 * double(steps));
  struct Sum {
    double fwd = 0, bwd = 0, mem = 0;
  };
  auto table = [&](const char* title, auto key) {
    std::map<std::string, Sum> sum;
    for (const profile::Row& r : rows) {
      Sum& s = sum[key(r)];
      s.fwd += r.forward_s;
      s.bwd += r.backward_s;
      s.mem += r.forward_bytes + r.backward_bytes;
    }
    std::vector<std::pair<std::string, Sum>> v(sum.begin(), sum.end());
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
      return a.second.fwd + a.second.bwd > b.second.fwd + b.second.bwd;
    });
    std::printf("  %-22s %10s %10s %10s %7s %10s\n", title, "fwd ms", "bwd ms", "total ms", "share", "tape MiB");
    for (const auto& [name, s] : v)
      std::printf("  %-22s %10.2f %10.2f %10.2f %6.1f%% %10.1f\n", name.c_str(), s.fwd * per, s.bwd * per,
                  (s.fwd + s.bwd) * per, 100.0 * (s.fwd + s.bwd) / (step_s * steps), s.mem * mib);
  };
  std::printf("  profile over %lld steps (per step; share of a %.1f ms step; tape MiB = values, gradients and "
              "scratch allocated):\n", (long long)steps, step_s * 1e3);
  table("by op", [](const profile::Row& r) { return r.op; });
  std::printf("\n");
  table("by block", [](const profile::Row& r) { return r.block; });
  std::printf("  of which sgemm calls made by ops: %.2f ms per step (%.1f%%; kernels' own GEMMs are not counted)\n",
              gemm_s * per, 100.0 * gemm_s / (step_s * steps));
}

nlohmann::json bench_run(const RunConfig& r, const TrainBenchArgs& a) {
  // A tape of this run's own (arenas only grow): each run's tape memory is its own, so runs
  // with and without recompute compare in one process (peak RSS does not).
  Tape run_tape;
  TapeScope run_scope(run_tape);
  release_scratch_tapes();
  set_num_threads(static_cast<int>(r.threads));
  const Corpus corpus = load_corpus(r.data);
  const PluginRegistry plugins(r.plugin_paths);
  Model model(r.model, r.where, static_cast<int64_t>(corpus.tokenizer.size()), plugins, r.seed);
  NA_CHECK(r.train.seq_len <= model.dims().max_len, r.where, "train.seq_len ", r.train.seq_len,
           " exceeds model.max_len ", model.dims().max_len);
  std::vector<Parameter*> params = model.params().all();
  std::unique_ptr<Optimizer> opt = make_optimizer(r.train, params);
  Batcher batcher(corpus.train, r.seed);
  time_steps(model, params, *opt, r, batcher, a.warmup);
  const Timing t = time_steps(model, params, *opt, r, batcher, a.steps);
  const double gflops = sgemm_gflops(r.train.batch_size * r.train.seq_len);
  // Model FLOPs: the cost model's training FLOPs per token (models/attention_cost.h).
  const double model_gflops =
      model_cost(model, r.train.seq_len, r.train.seq_len).train_flops_per_token * t.tokens_per_s / 1e9;
  const TapeMemory mem = tape_memory();
  nlohmann::json j = {{"experiment", r.experiment}, {"run", r.name}, {"params", model.params().count()},
                      {"threads", num_threads()}, {"batch_size", r.train.batch_size}, {"seq_len", r.train.seq_len},
                      {"steps", a.steps}, {"tokens_per_s", t.tokens_per_s}, {"step_median_s", t.step_median_s},
                      {"peak_rss_mib", peak_rss_mib()}, {"tape_mib", mem.held_mib},
                      {"tape_peak_mib", mem.total()}, {"tape_arena_peak_mib", mem.arena_mib},
                      {"scratch_peak_mib", mem.scratch_mib},
                      {"sgemm_gflops", gflops}, {"openblas_kernels", blas_kernels()}, {"model_gflops", model_gflops},
                      {"mfu", model_gflops / gflops}};
  if (!a.json) {
    std::printf("bench train %s/%s: %lld parameters, batch %lld x %lld tokens, %d threads, %lld warm-up + %lld "
                "timed steps\n", r.experiment.c_str(), r.name.c_str(), (long long)model.params().count(),
                (long long)r.train.batch_size, (long long)r.train.seq_len, num_threads(), (long long)a.warmup,
                (long long)a.steps);
    std::printf("  tokens/s      %.0f\n  step median   %.1f ms\n  peak RSS      %.0f MiB\n", t.tokens_per_s,
                t.step_median_s * 1e3, peak_rss_mib());
    std::printf("  tape peak     %.1f MiB (tape %.1f + scratch tapes %.1f): values and gradients of a step; "
                "arenas hold %.0f MiB\n", mem.total(), mem.arena_mib, mem.scratch_mib, mem.held_mib);
    std::printf("  sgemm         %.1f GFLOP/s (OpenBLAS %s kernels, measured now, all threads)\n", gflops,
                blas_kernels().c_str());
    std::printf("  model         %.1f GFLOP/s (the cost model's training FLOPs per token), MFU %.2f\n",
                model_gflops, model_gflops / gflops);
  }
  if (a.profile) {
    profile::start();
    const auto s = Clock::now();
    time_steps(model, params, *opt, r, batcher, a.steps);
    const double total = seconds_since(s);
    profile::stop();
    const std::vector<profile::Row> rows = profile::rows();
    if (!a.json) {
      print_profile(rows, profile::gemm_seconds(), a.steps, total / double(a.steps));
      // The trade recompute: true makes, in one line to compare runs with and without it.
      std::printf("  memory/time   tape peak %.1f MiB, step %.1f ms (profiled mean)\n", tape_memory().total(),
                  total / double(a.steps) * 1e3);
    }
    nlohmann::json p = nlohmann::json::array();
    for (const profile::Row& row : rows)
      p.push_back({{"block", row.block}, {"op", row.op}, {"forward_s", row.forward_s / a.steps},
                   {"backward_s", row.backward_s / a.steps}, {"forward_bytes", row.forward_bytes / a.steps},
                   {"backward_bytes", row.backward_bytes / a.steps}, {"calls", row.calls / a.steps}});
    j["profile"] = {{"step_s", total / a.steps}, {"sgemm_s", profile::gemm_seconds() / a.steps}, {"rows", p}};
  }
  return j;
}

void run_train_bench(const TrainBenchArgs& a) {
  NA_CHECK(a.steps >= 1 && a.warmup >= 0, "bench train", "--steps must be >= 1 and --warmup >= 0");
  const Experiment exp = load_experiment(a.experiment, a.sets);
  bool any = false;
  for (const RunConfig& r : exp.runs) {
    if (!a.only.empty() && std::find(a.only.begin(), a.only.end(), r.name) == a.only.end()) continue;
    any = true;
    nlohmann::json j = bench_run(r, a);
    if (!a.against_kernels.empty()) {
      const nlohmann::json c = bench_child(a, r.name, a.against_kernels);
      const double ratio = j["tokens_per_s"].get<double>() / c["tokens_per_s"].get<double>();
      j["against"] = {{"openblas_kernels", c["openblas_kernels"]}, {"tokens_per_s", c["tokens_per_s"]},
                      {"sgemm_gflops", c["sgemm_gflops"]}, {"ratio", ratio}};
      if (!a.json)
        std::printf("  vs %s      %.0f tokens/s with OPENBLAS_CORETYPE=%s (sgemm %.1f GFLOP/s): this run is %.2fx\n",
                    c["openblas_kernels"].get<std::string>().c_str(), c["tokens_per_s"].get<double>(),
                    a.against_kernels.c_str(), c["sgemm_gflops"].get<double>(), ratio);
    }
    if (a.json) std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  }
  NA_CHECK(any, a.experiment, "no run matches --only");
}

}  // namespace

void add_train_bench(CLI::App& bench) {
  auto a = std::make_shared<TrainBenchArgs>();
  auto* cmd = bench.add_subcommand("train", "Training tokens/s, step time, peak RSS and MFU of each run of an "
                                            "experiment; --profile shows where a step goes");
  cmd->add_option("experiment", a->experiment, "experiment YAML file")->required();
  cmd->add_option("--steps", a->steps, "timed steps")
      ->transform(integer_option<int64_t>())
      ->capture_default_str();
  cmd->add_option("--warmup", a->warmup, "untimed steps first")
      ->transform(integer_option<int64_t>())
      ->capture_default_str();
  cmd->add_option("--only", a->only, "bench only the named runs (repeatable; peak RSS is per process, so "
                                     "bench one run per process to compare memory)");
  cmd->add_option("--set", a->sets, "override a setting, as for `nanoattn run` (repeatable)");
  cmd->add_flag("--profile", a->profile, "then run --steps more steps and print time by op and by block");
  cmd->add_flag("--json", a->json, "one JSON line per run instead of text");
  cmd->add_option("--against-kernels", a->against_kernels,
                  "then time each run again in a child process with OPENBLAS_CORETYPE set to this (e.g. Prescott) "
                  "and print the ratio");
  cmd->callback([a] { run_train_bench(*a); });
}

}  // namespace na::cli
