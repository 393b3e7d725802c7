// Stopping on SIGINT / SIGTERM without losing anything. The handler only records the signal;
// long loops (building a model, training, evaluating, writing a dump, kl, benchmarks) call
// check_stop() at safe points, which throws Stopped: the stack unwinds, temporary files are
// removed by their owners and every earlier output stays as it was. A second SIGINT exits at
// once (code 130).
#pragma once
#include <string>

#include "nanoattn/error.h"

namespace na {

class Stopped : public Error {
 public:
  Stopped(int signal, std::string message) : Error("", std::move(message)), signal_(signal) {}
  int signal() const { return signal_; }
  int exit_code() const { return 128 + signal_; }  // the shell's convention: 130, 143

 private:
  int signal_;
};

// Routes SIGINT and SIGTERM to the recorder (idempotent).
void install_stop_handlers();
// The signal received so far, or 0.
int stop_signal();
// "SIGINT", "SIGTERM" or "signal N".
std::string signal_name(int signal);
// Throws Stopped("stopped by SIGINT while <doing>") if a signal came.
void check_stop(const char* doing);

}  // namespace na
