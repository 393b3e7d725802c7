// `nanoattn report STUDY_DIR [--out DIR]`: the research answer of a study folder (report.md,
// report.json, plots). The analysis is tools/analysis/study_report.py (numpy, h5py,
// matplotlib); this command finds it, checks that Debian's /usr/bin/python3 can import what it
// needs, runs it and exits with its exit code.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "nanoattn/error.h"
#include "nanoattn/stop.h"

extern char** environ;

namespace na::cli {
namespace {

namespace fs = std::filesystem;
constexpr const char* kScript = "study_report.py";
constexpr const char* kPackages = "python3 python3-numpy python3-h5py python3-matplotlib";

struct ReportArgs {
  std::string study, out;
};

// The interpreter Debian's python3-numpy / -h5py / -matplotlib are installed for (the python3
// first on PATH may be another). NANOATTN_PYTHON overrides it (tests use it).
std::string python() {
  const char* env = std::getenv("NANOATTN_PYTHON");
  return env && *env ? env : "/usr/bin/python3";
}

// Installed, the executable runs share/nanoattn/analysis/study_report.py of its own prefix (the
// path from its folder is NANOATTN_BIN_TO_ANALYSIS); in the build tree, where that is absent, the
// source tree's tools/analysis/. NANOATTN_ANALYSIS_DIR overrides both.
fs::path find_script() {
  std::vector<fs::path> tried;
  if (const char* env = std::getenv("NANOATTN_ANALYSIS_DIR"); env && *env) tried.push_back(fs::path(env) / kScript);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) tried.push_back(exe.parent_path() / NANOATTN_BIN_TO_ANALYSIS / kScript);
  tried.push_back(fs::path(NANOATTN_ANALYSIS_SOURCE_DIR) / kScript);
  std::string list;
  for (const fs::path& p : tried) {
    if (fs::is_regular_file(p, ec)) return p.lexically_normal();
    list += (list.empty() ? "" : ", ") + p.lexically_normal().string();
  }
  throw Error("nanoattn report", "cannot find " + std::string(kScript) + " (looked for " + list +
                                     "): reinstall nanoattn, or point NANOATTN_ANALYSIS_DIR at tools/analysis");
}

// Runs argv[0] with argv and returns its exit code (128 + N if signal N ended it). A SIGINT or
// SIGTERM this process gets is passed on to the child, which stops and removes its temporary files.
int run(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (const int err = posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ))
    throw Error(args[0], std::string("cannot run it: ") + std::strerror(err) + ": install " + kPackages +
                             " (tools/setup.sh), or set NANOATTN_PYTHON");
  int status = 0, forwarded = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {  // polled: our stop handler may restart a blocking wait
    if (const int sig = stop_signal(); sig && sig != forwarded) kill(pid, forwarded = sig);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Fails naming the Debian packages of the modules the interpreter cannot import.
void check_python(const std::string& py) {
  if (access(py.c_str(), X_OK) != 0)
    throw Error(py, std::string("no Python interpreter here (") + std::strerror(errno) + "): `nanoattn report` needs " +
                        "Debian's python3 with numpy, h5py and matplotlib: sudo apt-get install " + kPackages);
  // Exit code 64 + a bit per module it cannot find (no output to capture).
  const char* modules[] = {"numpy", "h5py", "matplotlib"};
  const int code = run({py, "-c",
                        "import importlib.util, sys\n"
                        "sys.exit(64 + sum(1 << i for i, m in enumerate(sys.argv[1:]) if importlib.util.find_spec(m) is None))",
                        modules[0], modules[1], modules[2]});
  if (code < 64 || code >= 64 + 8)
    throw Error(py, "does not run (exit code " + std::to_string(code) + "): `nanoattn report` needs Debian's " +
                        kPackages);
  std::string missing;
  for (int i = 0; i < 3; ++i)
    if ((code - 64) & (1 << i)) missing += (missing.empty() ? "python3-" : " python3-") + std::string(modules[i]);
  if (!missing.empty())
    throw Error(py, "cannot import what `nanoattn report` needs: install " + missing + " (sudo apt-get install " +
                        missing + ", or tools/setup.sh)");
}

void run_report(const ReportArgs& a) {
  std::error_code ec;
  NA_CHECK(fs::is_directory(a.study, ec), a.study,
           fs::exists(a.study, ec) ? "not a folder: give the study folder `nanoattn study` wrote"
                                   : "no such folder: give the study folder `nanoattn study` wrote");
  const fs::path script = find_script();
  const std::string py = python();
  check_python(py);
  std::vector<std::string> args = {py, script.string(), a.study};
  if (!a.out.empty()) args.insert(args.end(), {"--out", a.out});
  const int code = run(args);
  if (code != 0) {
    std::fflush(nullptr);
    std::exit(code);  // the script has said what went wrong; keep its exit code
  }
}

}  // namespace

void add_report_command(CLI::App& app) {
  auto a = std::make_shared<ReportArgs>();
  auto* cmd = app.add_subcommand("report", "Write a study's report.md, report.json and plots (the research answer)");
  cmd->add_option("study", a->study, "the folder `nanoattn study` wrote (holds study.json)")->required();
  cmd->add_option("--out", a->out, "where to write the report (default: the study folder)");
  cmd->callback([a] { run_report(*a); });
}

}  // namespace na::cli
