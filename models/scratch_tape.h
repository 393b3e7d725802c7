// Scratch tapes for blocks that run part of the graph on a tape of their own and free it at once
// (recompute.h, blocks/reversible.h). One per nesting depth and thread (a recomputed block
// inside a reversible layer uses the next one), kept between steps so that their arenas are not
// reallocated every step.
#pragma once
#include <cstddef>

#include "nanoattn/tape.h"

namespace na {

// The next free scratch tape while alive; reset (its values and gradients freed) at the end.
class ScratchTape {
 public:
  ScratchTape();
  ~ScratchTape();
  ScratchTape(const ScratchTape&) = delete;
  ScratchTape& operator=(const ScratchTape&) = delete;
  Tape& tape() const { return *tape_; }

 private:
  Tape* tape_;
};

// The most arena bytes this thread's scratch tapes had in use, summed over nesting depths: with
// tape().arena().high_water(), the tape memory a step needs.
size_t scratch_tape_bytes();
// What their arenas hold (whole chunks).
size_t scratch_tape_capacity();
// Frees this thread's scratch tapes (none may be in use), e.g. between benchmarked runs.
void release_scratch_tapes();

}  // namespace na
