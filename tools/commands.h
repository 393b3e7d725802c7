// Each CLI subcommand lives in its own file and registers itself on the app here.
#pragma once
#include <CLI/CLI.hpp>

namespace na::cli {

void add_demo_command(CLI::App& app);
void add_bench_command(CLI::App& app);

}  // namespace na::cli
