#include "nanoattn/profile.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <thread>
#include <utility>

#include "nanoattn/tape.h"

namespace na::profile {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Frame {
  const char* name;
  Clock::time_point start;
  size_t bytes_start;      // tape bytes in use when the scope opened
  double child = 0;        // time of the op scopes opened inside this one
  size_t child_bytes = 0;  // tape bytes they allocated
};

// From this tape entry on, entries belong to (block, op).
struct Mark {
  size_t entry;
  const char* block;
  const char* op;
};

struct State {
  std::atomic<bool> on{false};
  std::thread::id thread;
  bool in_backward = false;
  std::vector<Frame> ops;
  std::vector<const char*> blocks;
  std::vector<Mark> marks;  // for the tape generation below
  uint64_t generation = 0;
  const Tape* tape = nullptr;  // the thread's tape at start()
  std::map<std::pair<std::string, std::string>, Row> rows;
  int gemm_depth = 0;
  Clock::time_point gemm_start;
  double gemm = 0;
};

State& state() {
  static State s;
  return s;
}

bool profiled_thread() {
  State& s = state();
  return s.on.load(std::memory_order_relaxed) && s.thread == std::this_thread::get_id();
}

// Forward scopes are ignored while a backward entry runs (it is timed as a whole, even when it
// recomputes a forward, as the chunked feed-forward does).
bool recording() { return profiled_thread() && !state().in_backward; }

Row& row(const char* block, const char* op) {
  Row& r = state().rows[{block, op}];
  if (r.op.empty()) r.block = block, r.op = op;
  return r;
}

void mark() {
  State& s = state();
  Tape& t = tape();
  // Marks index the profiled tape's entries. A scratch tape (TapeScope: a recomputed block)
  // runs inside one entry of it, timed as a whole; its own marks would only clear these.
  if (&t != s.tape) return;
  if (t.generation() != s.generation) {
    s.marks.clear();
    s.generation = t.generation();
  }
  s.marks.push_back({t.entry_count(), s.blocks.empty() ? "(model)" : s.blocks.back(),
                     s.ops.empty() ? "(untracked)" : s.ops.back().name});
}

}  // namespace

bool enabled() { return state().on.load(std::memory_order_relaxed); }

void start() {
  State& s = state();
  s.thread = std::this_thread::get_id();
  s.tape = &tape();
  s.ops.clear();
  s.blocks.clear();
  s.marks.clear();
  s.rows.clear();
  s.gemm = 0;
  s.gemm_depth = 0;
  s.on = true;
}

void stop() { state().on = false; }

Scope::Scope(Kind kind, const char* name) : active_(recording()), kind_(kind) {
  if (!active_) return;
  State& s = state();
  if (kind == Op)
    s.ops.push_back({name, Clock::now(), tape().arena().bytes_in_use()});
  else
    s.blocks.push_back(name);
  mark();
}

// Scopes nest strictly, so this one is the innermost open scope of its kind.
Scope::~Scope() {
  if (!active_) return;
  State& s = state();
  if (kind_ == Op) {
    const Frame f = s.ops.back();
    s.ops.pop_back();
    const double elapsed = since(f.start);
    const size_t bytes = tape().arena().bytes_in_use() - f.bytes_start;
    if (!s.ops.empty()) {
      s.ops.back().child += elapsed;
      s.ops.back().child_bytes += bytes;
    }
    Row& r = row(s.blocks.empty() ? "(model)" : s.blocks.back(), f.name);
    r.forward_s += elapsed - f.child;
    r.forward_bytes += static_cast<double>(bytes - f.child_bytes);
    ++r.calls;
  } else {
    s.blocks.pop_back();
  }
  mark();
}

GemmTimer::GemmTimer() : active_(profiled_thread()) {
  if (active_ && state().gemm_depth++ == 0) state().gemm_start = Clock::now();
}

GemmTimer::~GemmTimer() {
  if (active_ && --state().gemm_depth == 0) state().gemm += since(state().gemm_start);
}

void backward_entry(size_t entry_index, double seconds, size_t bytes) {
  if (!profiled_thread()) return;
  const std::vector<Mark>& m = state().marks;
  auto it = std::upper_bound(m.begin(), m.end(), entry_index,
                             [](size_t i, const Mark& mk) { return i < mk.entry; });
  if (it == m.begin()) {
    it = m.end();
  } else {
    --it;
  }
  Row& r = it == m.end() ? row("(model)", "(untracked)") : row(it->block, it->op);
  r.backward_s += seconds;
  r.backward_bytes += static_cast<double>(bytes);
}

bool in_backward() { return state().in_backward; }
void set_in_backward(bool on) { state().in_backward = on; }

std::vector<Row> rows() {
  std::vector<Row> out;
  for (const auto& kv : state().rows) out.push_back(kv.second);
  std::stable_sort(out.begin(), out.end(), [](const Row& a, const Row& b) {
    return a.forward_s + a.backward_s > b.forward_s + b.backward_s;
  });
  return out;
}

double gemm_seconds() { return state().gemm; }

}  // namespace na::profile
