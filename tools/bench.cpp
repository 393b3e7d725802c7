// `nanoattn bench ...`: benchmarks are commands, never part of the test suite.
#include "commands.h"

namespace na::cli {

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks (never part of the test suite)");
  bench->require_subcommand(1);
  add_linear_bench(*bench);
  add_attention_bench(*bench);
  add_train_bench(*bench);
}

}  // namespace na::cli
