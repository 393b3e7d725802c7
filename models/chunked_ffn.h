// The feed-forward network computed over chunks of rows, Reformer-style (Kitaev et al. 2020):
// one custom tape function that keeps only its input and recomputes each chunk's hidden
// activations in the backward, so the (N, H) hidden layer never exists whole. Peak extra
// memory: two (ceil(N / chunks), H) buffers instead of the composite's four (N, H) tensors.
#pragma once
#include <cstdint>

#include "nanoattn/tape.h"

namespace na {

// x: (..., C)  w1: (H, C)  b1: (H,)  w2: (C, H)  b2: (C,)  -> (..., C)
// = linear(gelu(linear(x, w1, b1)), w2, b2), with the N = numel(x) / C rows cut into
// min(chunks, N) contiguous chunks whose sizes differ by at most one. Same GELU as ops'
// gelu (exact erf form). Bitwise independent of the thread count.
Var chunked_ffn(const Var& x, const Var& w1, const Var& b1, const Var& w2, const Var& b2, int64_t chunks);

}  // namespace na
