// The nanoattn command line: `nanoattn <command> --help` describes each command.
#include <cstdio>

#include "commands.h"
#include "nanoattn/error.h"

int main(int argc, char** argv) {
  CLI::App app{"nanoattn: attention research on CPU (softmax vs linear attention and friends)"};
  app.require_subcommand(1);
  na::cli::add_run_command(app);
  na::cli::add_eval_command(app);
  na::cli::add_sample_command(app);
  na::cli::add_kl_command(app);
  na::cli::add_params_command(app);
  na::cli::add_demo_command(app);
  na::cli::add_bench_command(app);
  na::cli::add_plugins_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const na::Error& e) {
    std::fprintf(stderr, "nanoattn: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // a bug: say so rather than abort
    std::fprintf(stderr, "nanoattn: internal error (please report it): %s\n", e.what());
    return 2;
  }
  return 0;
}
