// `recompute: true` on any block of a YAML block list: the block's activations are not kept
// for the backward but recomputed there (gradient checkpointing). Same parameters, names and
// gradients (bitwise) as without; costs about one more forward of the block per step.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "block.h"

namespace na {

// Wraps `inner` (built as usual, its `type` set); `where` locates the block for errors.
std::unique_ptr<Block> make_recompute(std::unique_ptr<Block> inner, const std::string& where);

// Arena bytes held by this thread's scratch tapes (the recomputed blocks' activations live
// there for a moment): with tape().arena().capacity(), the step's tape memory.
size_t recompute_scratch_bytes();
// Frees this thread's scratch tapes (none may be in use), e.g. between benchmarked runs.
void recompute_release_scratch();

}  // namespace na
