// Stopping on signals (nanoattn/stop.h). The recorded signal is process-wide and never reset,
// so each case runs in a forked child and reports through its exit code.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <functional>

#include "nanoattn/stop.h"

using namespace na;

namespace {

// Runs body in a child process; returns its exit code (or 1000 + the signal that killed it).
int in_child(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("stop: nothing happens until a signal comes; then check_stop throws Stopped naming it") {
  CHECK(in_child([] {
          install_stop_handlers();
          if (stop_signal() != 0) return 1;
          check_stop("idle");  // no signal: no throw
          raise(SIGTERM);      // recorded, not fatal
          if (stop_signal() != SIGTERM) return 2;
          try {
            check_stop("evaluating");
          } catch (const Stopped& s) {
            const bool ok = std::string(s.what()) == "stopped by SIGTERM while evaluating" && s.exit_code() == 143;
            return ok ? 0 : 3;
          }
          return 4;
        }) == 0);
}

TEST_CASE("stop: a second SIGINT exits at once with code 130") {
  CHECK(in_child([] {
          install_stop_handlers();
          raise(SIGINT);
          if (stop_signal() != SIGINT) return 1;
          raise(SIGINT);  // does not return
          return 2;
        }) == 130);
}
