#include "study/job_pool.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <csignal>
#include <filesystem>
#include <map>
#include <thread>

#include "nanoattn/error.h"
#include "nanoattn/stop.h"

namespace na {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

enum class State { Waiting, Running, Done, Failed };

pid_t spawn(const std::string& program, const std::vector<std::string>& args, const std::string& log,
            const std::string& out) {
  if (!log.empty()) fs::create_directories(fs::path(log).parent_path());
  const pid_t parent = getpid();
  const pid_t pid = fork();
  NA_CHECK(pid >= 0, program, "cannot start a process: ", std::strerror(errno));
  if (pid > 0) return pid;
  // The child: die with the study, even when it is killed with SIGKILL.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  if (!log.empty()) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) _exit(127);
    dup2(fd, 1);
    dup2(fd, 2);
  }
  if (!out.empty()) {
    const int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) _exit(127);
    dup2(fd, 1);
  }
  std::vector<char*> argv{const_cast<char*>(program.c_str())};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(program.c_str(), argv.data());
  _exit(127);
}

std::string exit_text(int status) {
  if (WIFEXITED(status)) return cat("exit code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return cat("killed by ", signal_name(WTERMSIG(status)));
  return "stopped";
}

}  // namespace

std::vector<JobEvent> run_jobs(std::vector<Job>& jobs, size_t slots, const std::string& program,
                               const std::function<void(const JobEvent&)>& on_event) {
  std::vector<State> state(jobs.size(), State::Waiting);
  std::vector<Clock::time_point> started(jobs.size());
  std::map<pid_t, size_t> running;
  std::vector<JobEvent> problems;
  auto emit = [&](JobEvent e) {
    if (e.kind == JobEvent::Failed || e.kind == JobEvent::Blocked) problems.push_back(e);
    if (on_event) on_event(e);
  };
  auto seconds = [&](size_t j) { return std::chrono::duration<double>(Clock::now() - started[j]).count(); };
  auto finish = [&](size_t j, const std::string& error) {
    state[j] = error.empty() ? State::Done : State::Failed;
    emit({error.empty() ? JobEvent::Finished : JobEvent::Failed, j, seconds(j), error});
  };
  auto run_after = [&](size_t j) -> std::string {
    try {
      if (jobs[j].after) jobs[j].after();
      return "";
    } catch (const Stopped&) {
      throw;
    } catch (const std::exception& e) {
      return e.what();
    }
  };

  for (;;) {
    if (const int sig = stop_signal()) {
      for (const auto& [pid, j] : running) kill(pid, SIGTERM);
      for (const auto& [pid, j] : running) waitpid(pid, nullptr, 0);
      throw Stopped(sig, cat("stopped by ", signal_name(sig), " with ", running.size(), " job(s) running (each kept its "
                             "last checkpoint): run the same command again to continue"));
    }
    // Reap finished children.
    int status = 0;
    for (pid_t pid; !running.empty() && (pid = waitpid(-1, &status, WNOHANG)) > 0;) {
      const size_t j = running.at(pid);
      running.erase(pid);
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      finish(j, ok ? run_after(j) : cat(exit_text(status), "; see ", jobs[j].log));
    }
    // Start what is ready, in list order.
    bool waiting = false;
    for (size_t j = 0; j < jobs.size(); ++j) {
      if (state[j] != State::Waiting) continue;
      for (size_t d : jobs[j].deps) NA_CHECK(d < j, jobs[j].name, "depends on a later job (a bug)");
      bool ready = true, blocked = false;
      std::string why;
      for (size_t d : jobs[j].deps) {
        ready = ready && state[d] == State::Done;
        if (state[d] == State::Failed) blocked = true, why = jobs[d].name;
      }
      if (blocked) {
        state[j] = State::Failed;
        emit({JobEvent::Blocked, j, 0, cat("not run: ", why, " failed")});
        continue;
      }
      if (jobs[j].last)
        for (size_t k = 0; k < jobs.size(); ++k) ready = ready && (k == j || state[k] == State::Done || state[k] == State::Failed);
      waiting = true;
      if (!ready) continue;
      if (jobs[j].done && jobs[j].done()) {
        state[j] = State::Done;
        emit({JobEvent::Skipped, j, 0, ""});
        continue;
      }
      if (running.size() >= slots) continue;
      started[j] = Clock::now();
      emit({JobEvent::Started, j, 0, ""});
      if (!jobs[j].argv.empty()) {
        running[spawn(program, jobs[j].argv, jobs[j].log, jobs[j].out)] = j;
        state[j] = State::Running;
      } else {  // in-process: runs now, on this thread, while the children go on
        std::string error;
        try {
          if (jobs[j].work) jobs[j].work();
        } catch (const Stopped&) {
          throw;
        } catch (const std::exception& e) {
          error = e.what();
        }
        finish(j, error.empty() ? run_after(j) : error);
      }
    }
    if (!waiting && running.empty()) break;
    if (!running.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return problems;
}

}  // namespace na
