// Each CLI subcommand lives in its own file and registers itself on the app here.
#pragma once
#include <CLI/CLI.hpp>

namespace na::cli {

void add_demo_command(CLI::App& app);
void add_plugins_command(CLI::App& app);
void add_bench_command(CLI::App& app);  // `bench`, with one subcommand per benchmark:
void add_linear_bench(CLI::App& bench);
void add_attention_bench(CLI::App& bench);

}  // namespace na::cli
