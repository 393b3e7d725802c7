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

// The most arena bytes this thread's scratch tapes had in use (a recomputed block's
// activations live there for a moment), summed over nesting depths: with
// tape().arena().high_water(), the tape memory a step needs.
size_t recompute_scratch_bytes();
// What their arenas hold (whole chunks).
size_t recompute_scratch_capacity();
// Frees this thread's scratch tapes (none may be in use), e.g. between benchmarked runs.
void recompute_release_scratch();

}  // namespace na
