// Opt-in wall-clock profile of training steps, by op and by model block (`nanoattn bench
// train --profile`). Ops and blocks open scopes; while profiling is off a scope costs one
// load of a flag. Forward time is exclusive (an op's time minus the ops it calls); backward
// time is the time of each tape entry, charged to the op and block whose scope recorded it.
// Tape memory is counted the same way. Only the thread that called start() is profiled (the one
// that runs the model).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace na::profile {

bool enabled();
void start();  // clears the counters and profiles the calling thread
void stop();

class Scope {
 public:
  enum Kind { Op, Block };
  // `name` must stay valid until the next Tape::reset() (a literal, or a block's type name).
  Scope(Kind kind, const char* name);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  bool active_;
  Kind kind_;
};

// Times the top-level sgemm calls of the profiled thread (a share of the ops' time).
class GemmTimer {
 public:
  GemmTimer();
  ~GemmTimer();
  GemmTimer(const GemmTimer&) = delete;
  GemmTimer& operator=(const GemmTimer&) = delete;

 private:
  bool active_;
};

// Called by Tape::run_backward for each entry it runs.
void backward_entry(size_t entry_index, double seconds, size_t tape_bytes);
bool in_backward();
void set_in_backward(bool on);

struct Row {
  std::string block, op;
  double forward_s = 0, backward_s = 0;
  double forward_bytes = 0, backward_bytes = 0;  // tape memory allocated (values, gradients, scratch)
  int64_t calls = 0;
};
std::vector<Row> rows();  // by total time, largest first
double gemm_seconds();

}  // namespace na::profile

// The first line of an op: charges the op's forward (and the backward it records) to `name`.
#define NA_PROFILE_OP(name) ::na::profile::Scope na_profile_scope_(::na::profile::Scope::Op, name)
