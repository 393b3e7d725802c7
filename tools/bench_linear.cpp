// `nanoattn bench linear`: forward + backward of a linear layer through the tape, against
// plain multi-threaded sgemm (OpenBLAS's own threads) doing the same three products in the same process.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

#include "bench_options.h"
#include "commands.h"
#include "nanoattn/core.h"
#include "nanoattn/ops.h"

namespace na::cli {

namespace {

struct LinearBenchArgs {
  int rows = 4096, in = 512, out = 2048, repeats = 10, threads = 2;
};

double seconds_of(const std::function<void()>& f) {
  auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void run_linear_bench(const LinearBenchArgs& a) {
  set_num_threads(a.threads);
  const int64_t M = a.rows, K = a.in, N = a.out;
  Tensor x = Tensor::empty({M, K}), w = Tensor::empty({N, K}), dy = Tensor::empty({M, N});
  Tensor y = Tensor::empty({M, N}), dx = Tensor::empty({M, K}), dw = Tensor::empty({N, K});
  fill_uniform(x, 1, -1, 1);
  fill_uniform(w, 2, -1, 1);
  fill_uniform(dy, 3, -1, 1);
  double flops = 3.0 * 2.0 * M * N * K;

  // Baseline: OpenBLAS's own threading, the same three products as linear's forward/backward.
  auto baseline = [&] {
    gemm_serial(false, true, M, N, K, 1, x.data(), K, w.data(), K, 0, y.data(), N);
    gemm_serial(false, false, M, K, N, 1, dy.data(), N, w.data(), K, 0, dx.data(), K);
    gemm_serial(true, false, N, K, M, 1, dy.data(), N, x.data(), K, 0, dw.data(), K);
  };
  // nanoattn: the tape records linear(), backward runs dx and dW, then the step ends.
  Parameter weight("w", w.clone());
  auto through_tape = [&] {
    Var xv = tape().leaf(x, true);
    Var yv = linear(xv, weight);
    tape().backward(yv, dy);
    tape().reset();
  };
  // Alternate the two so that any drift in the machine's speed hits both alike. Each gets a
  // warm-up call, and a pause first so the other's idle threads have stopped spinning.
  auto pause = [] { std::this_thread::sleep_for(std::chrono::milliseconds(200)); };
  std::vector<double> tb, tt, ratio;
  for (int i = 0; i < a.repeats; ++i) {
    check_stop("benchmarking linear");
    set_blas_threads(a.threads);
    pause();
    baseline();
    tb.push_back(seconds_of(baseline));
    set_blas_threads(1);
    pause();
    through_tape();
    tt.push_back(seconds_of(through_tape));
    ratio.push_back(tb.back() / tt.back());
  }
  double t_blas = median(tb), t_tape = median(tt);

  double g_blas = flops / t_blas * 1e-9, g_tape = flops / t_tape * 1e-9;
  std::printf("linear x(%lld x %lld) . W(%lld x %lld): forward + backward = 3 sgemm, %.2f GFLOP\n",
              (long long)M, (long long)K, (long long)K, (long long)N, flops * 1e-9);
  std::printf("threads %d, median of %d\n", a.threads, a.repeats);
  std::printf("  cblas_sgemm (OpenBLAS threads)  %8.2f ms  %7.1f GFLOP/s\n", t_blas * 1e3, g_blas);
  std::printf("  nanoattn tape (TBB + sgemm)     %8.2f ms  %7.1f GFLOP/s\n", t_tape * 1e3, g_tape);
  std::printf("  ratio tape / cblas              %8.3f  (median of per-pair ratios)\n", median(ratio));
}

}  // namespace

void add_linear_bench(CLI::App& bench) {
  auto args = std::make_shared<LinearBenchArgs>();
  auto* lin = bench.add_subcommand("linear", "Tape linear layer vs plain cblas_sgemm GFLOP/s");
  lin->add_option("--rows", args->rows, "rows of x")
      ->transform(integer_option<int>())
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  lin->add_option("--in", args->in, "input features")
      ->transform(integer_option<int>())
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  lin->add_option("--out", args->out, "output features")
      ->transform(integer_option<int>())
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  lin->add_option("--repeats", args->repeats, "timed repeats")
      ->transform(integer_option<int>())
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  lin->add_option("--threads", args->threads, "threads for both")
      ->transform(integer_option<int>())
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  lin->callback([args] { run_linear_bench(*args); });
}

}  // namespace na::cli
