#include "scratch_tape.h"

#include <memory>
#include <vector>

#include "nanoattn/error.h"

namespace na {

namespace {

struct Pool {
  std::vector<std::unique_ptr<Tape>> tapes;
  size_t depth = 0;
};
Pool& pool() {
  thread_local Pool p;
  return p;
}

}  // namespace

ScratchTape::ScratchTape() {
  Pool& p = pool();
  if (p.depth == p.tapes.size()) p.tapes.push_back(std::make_unique<Tape>());
  tape_ = p.tapes[p.depth++].get();
}

ScratchTape::~ScratchTape() {
  tape_->reset();
  --pool().depth;
}

size_t scratch_tape_bytes() {
  size_t bytes = 0;
  for (const auto& t : pool().tapes) bytes += t->arena().high_water();
  return bytes;
}

size_t scratch_tape_capacity() {
  size_t bytes = 0;
  for (const auto& t : pool().tapes) bytes += t->arena().capacity();
  return bytes;
}

void release_scratch_tapes() {
  NA_CHECK(pool().depth == 0, "release_scratch_tapes", "a scratch tape is in use");
  pool().tapes.clear();
}

}  // namespace na
