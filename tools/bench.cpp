// `nanoattn bench ...`: benchmarks are commands, never part of the test suite.
#include <cstdio>
#include <string>

#include "commands.h"
#include "nanoattn/blas_kernels.h"

namespace na::cli {

void print_blas_kernels() {
  static const bool printed = [] {
    const BlasChoice& c = blas_choice();
    std::fprintf(stderr, "OpenBLAS kernels: %s (%s)\n", c.kernels.c_str(), c.why.c_str());
    return true;
  }();
  (void)printed;
}

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks (never part of the test suite)");
  bench->require_subcommand(1);
  bench->parse_complete_callback(print_blas_kernels);
  add_linear_bench(*bench);
  add_attention_bench(*bench);
  add_train_bench(*bench);
  add_generate_bench(*bench);
}

}  // namespace na::cli
