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

// Refuses (an error at `where`, starting with `why`) a block whose training forward a second run
// would not repeat, so that its recomputation (here, or a reversible stack's) gives its gradients.
void check_recomputable(const Block& block, const std::string& where, const std::string& why);

}  // namespace na
