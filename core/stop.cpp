#include "nanoattn/stop.h"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace na {
namespace {

std::atomic<int> g_signal{0};

extern "C" void record_signal(int sig) {
  if (sig == SIGINT && g_signal.load() == SIGINT) _exit(130);  // the second Ctrl-C: at once
  g_signal = sig;
}

}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = record_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // system calls carry on; the loops notice the signal
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int stop_signal() { return g_signal.load(); }

std::string signal_name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return cat("signal ", signal);
}

void check_stop(const char* doing) {
  if (const int sig = g_signal.load()) throw Stopped(sig, cat("stopped by ", signal_name(sig), " while ", doing));
}

}  // namespace na
