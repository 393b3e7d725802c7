// The nanoattn command line: `nanoattn <command> --help` describes each command.
#include <cstdio>
#include <filesystem>
#include <new>
#include <string>

#include "commands.h"
#include "dist/comm.h"
#include "nanoattn/error.h"
#include "nanoattn/stop.h"

namespace {

int run(CLI::App& app, int argc, char** argv) {
  try {
    na::init_comm();  // MPI under mpirun, before the stop handlers so ours are the ones installed
    na::install_stop_handlers();  // every command stops cleanly on Ctrl-C / SIGTERM
    // Every rank would run any other command in full, writing the same files.
    NA_CHECK(na::comm().size() == 1 || (argc > 1 && std::string(argv[1]) == "run"), "mpirun",
             "only `nanoattn run` trains data-parallel: start other commands without mpirun");
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const na::Stopped& e) {
    if (na::comm().leader()) std::fprintf(stderr, "nanoattn: %s\n", e.what());  // an agreed stop: said once
    return e.exit_code();
  } catch (const na::Error& e) {
    std::fprintf(stderr, "nanoattn: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "nanoattn: error: out of memory: lower the batch size, the sequence length or the model "
                         "size\n");
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    std::fprintf(stderr, "nanoattn: error: %s: %s\n", e.path1().c_str(), e.code().message().c_str());
    return 1;
  } catch (const std::exception& e) {  // a bug: say so rather than abort
    std::fprintf(stderr, "nanoattn: internal error (please report it): %s\n", e.what());
    return 2;
  }
  if (const int sig = na::stop_signal()) {  // after the last safe point: the work is whole, but say so
    std::fprintf(stderr, "nanoattn: %s came as the command finished: its outputs are complete\n",
                 na::signal_name(sig).c_str());
    return 128 + sig;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nanoattn: attention research on CPU (softmax vs linear attention and friends)"};
  app.require_subcommand(1);
  na::cli::add_run_command(app);
  na::cli::add_eval_command(app);
  na::cli::add_sample_command(app);
  na::cli::add_kl_command(app);
  na::cli::add_study_command(app);
  na::cli::add_params_command(app);
  na::cli::add_report_command(app);
  na::cli::add_match_command(app);
  na::cli::add_demo_command(app);
  na::cli::add_bench_command(app);
  na::cli::add_plugins_command(app);
  na::cli::add_check_plugin_command(app);
  na::cli::add_new_plugin_command(app);
  const int code = run(app, argc, argv);
  // Under mpirun a rank that failed (or stopped) ends the job: the others may be waiting for it.
  if (code != 0 && na::comm().size() > 1) na::comm().abort(code);
  na::finalize_comm();
  return code;
}
