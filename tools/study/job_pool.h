// Runs a study's jobs: each is a nanoattn subprocess or a short piece of in-process work, with
// dependencies, at most `slots` at a time. A job whose outputs exist is skipped, so running the
// same list again after a kill continues where it stopped. Children die with the pool's process
// (PR_SET_PDEATHSIG): a `kill -9` of the study never leaves a training holding a run folder.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace na {

struct Job {
  std::string name;                   // "tinyshakespeare/elu/seed1 train", for messages
  std::vector<size_t> deps;           // indices of jobs that must succeed first
  bool last = false;                  // runs once every other job has succeeded or failed
  std::function<bool()> done;         // outputs complete already: skip (null: never)
  std::vector<std::string> argv;      // a nanoattn command line (without the program), or
  std::function<void()> work;         // in-process work (throws na::Error on failure)
  std::function<void()> after;        // in-process, after the subprocess succeeded
  std::string log;                    // the subprocess's stdout and stderr are appended here
  std::string out;                    // if set, its stdout goes to this file instead (truncated)
};

struct JobEvent {
  enum Kind { Started, Finished, Skipped, Failed, Blocked } kind;
  size_t job = 0;
  double seconds = 0;       // Finished / Failed: how long it ran
  std::string message;      // Failed: why; Blocked: which dependency failed
};

// Runs every job (`program` is the nanoattn executable for subprocesses). Returns the failed
// and blocked jobs' events. On SIGINT / SIGTERM the running children get SIGTERM (they save a
// checkpoint), are waited for, and Stopped is thrown.
std::vector<JobEvent> run_jobs(std::vector<Job>& jobs, size_t slots, const std::string& program,
                               const std::function<void(const JobEvent&)>& on_event);

}  // namespace na
