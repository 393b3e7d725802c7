// Each CLI subcommand lives in its own file and registers itself on the app here.
#pragma once
#include <CLI/CLI.hpp>

namespace na::cli {

void add_demo_command(CLI::App& app);
void add_plugins_command(CLI::App& app);
void add_check_plugin_command(CLI::App& app);  // check_plugin_cmd.cpp
void add_new_plugin_command(CLI::App& app);    // new_plugin_cmd.cpp, new_plugin/
void add_run_command(CLI::App& app);     // run_cmd.cpp
void add_eval_command(CLI::App& app);    // eval_cmd.cpp
void add_sample_command(CLI::App& app);  // eval_cmd.cpp
void add_kl_command(CLI::App& app);      // kl_cmd.cpp
void add_study_command(CLI::App& app);   // study_cmd.cpp, tools/study/
void add_params_command(CLI::App& app);  // params_cmd.cpp: `params` and `blocks`
void add_report_command(CLI::App& app);  // report_cmd.cpp: runs tools/analysis/study_report.py
void add_match_command(CLI::App& app);   // match_cmd.cpp
void add_bench_command(CLI::App& app);  // `bench`, with one subcommand per benchmark:
void add_linear_bench(CLI::App& bench);
void add_attention_bench(CLI::App& bench);
void add_train_bench(CLI::App& bench);  // bench_train.cpp
void add_generate_bench(CLI::App& bench);  // bench_generate.cpp

// Once per process, on stderr: which OpenBLAS kernels run and why (blas_kernels.h; bench.cpp).
// Commands that train or time call it: the speed depends on it.
void print_blas_kernels();

}  // namespace na::cli
