// `nanoattn bench linear`: forward + backward of a linear layer through the tape, against
// plain multi-threaded cblas_sgemm doing the same three products in the same process.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "commands.h"
#include "nanoattn/core.h"
#include "nanoattn/ops.h"

namespace na::cli {

namespace {

struct LinearBenchArgs {
  int rows = 4096, in = 512, out = 2048, repeats = 10, threads = 2;
};

template <class F>
double median_seconds(int repeats, F&& f) {
  f();  // warm-up: packs buffers, grows the arena
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    auto start = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
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
  set_blas_threads(a.threads);
  double t_blas = median_seconds(a.repeats, [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, x.data(), K, w.data(), K, 0, y.data(), N);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, N, 1, dy.data(), N, w.data(), K, 0, dx.data(), K);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M, 1, dy.data(), N, x.data(), K, 0, dw.data(), K);
  });
  set_blas_threads(1);

  // nanoattn: the tape records linear(), backward runs dx and dW, then the step ends.
  Parameter weight("w", w.clone());
  double t_tape = median_seconds(a.repeats, [&] {
    Var xv = tape().leaf(x, true);
    Var yv = linear(xv, weight);
    tape().backward(yv, dy);
    tape().reset();
  });

  double g_blas = flops / t_blas * 1e-9, g_tape = flops / t_tape * 1e-9;
  std::printf("linear x(%lld x %lld) . W(%lld x %lld): forward + backward = 3 sgemm, %.2f GFLOP\n",
              (long long)M, (long long)K, (long long)K, (long long)N, flops * 1e-9);
  std::printf("threads %d, median of %d\n", a.threads, a.repeats);
  std::printf("  cblas_sgemm (OpenBLAS threads)  %8.2f ms  %7.1f GFLOP/s\n", t_blas * 1e3, g_blas);
  std::printf("  nanoattn tape (TBB + sgemm)     %8.2f ms  %7.1f GFLOP/s\n", t_tape * 1e3, g_tape);
  std::printf("  ratio tape / cblas              %8.3f\n", g_tape / g_blas);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks (never part of the test suite)");
  bench->require_subcommand(1);
  auto args = std::make_shared<LinearBenchArgs>();
  auto* lin = bench->add_subcommand("linear", "Tape linear layer vs plain cblas_sgemm GFLOP/s");
  lin->add_option("--rows", args->rows, "rows of x")->check(CLI::PositiveNumber)->capture_default_str();
  lin->add_option("--in", args->in, "input features")->check(CLI::PositiveNumber)->capture_default_str();
  lin->add_option("--out", args->out, "output features")->check(CLI::PositiveNumber)->capture_default_str();
  lin->add_option("--repeats", args->repeats, "timed repeats")->check(CLI::PositiveNumber)->capture_default_str();
  lin->add_option("--threads", args->threads, "threads for both")->check(CLI::PositiveNumber)->capture_default_str();
  lin->callback([args] { run_linear_bench(*args); });
}

}  // namespace na::cli
