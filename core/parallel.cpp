#include "nanoattn/parallel.h"

#include <memory>

#include <tbb/global_control.h>
#include <tbb/task_arena.h>

namespace na {

namespace {
std::unique_ptr<tbb::global_control>& thread_limit() {
  static std::unique_ptr<tbb::global_control> limit;
  return limit;
}
}  // namespace

void set_num_threads(int n) {
  thread_limit().reset();
  if (n > 0)
    thread_limit() = std::make_unique<tbb::global_control>(
        tbb::global_control::max_allowed_parallelism, static_cast<size_t>(n));
}

int num_threads() {
  return static_cast<int>(
      tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
}

}  // namespace na
