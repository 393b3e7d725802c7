// The naive oracle of the sparse-pattern plugins: a dense T x S masked softmax built from
// ordinary ops (matmul, masked_fill, softmax), O(T S) memory. Each plugin builds its mask
// from its own definition of the pattern (a predicate over (t, s)), independently of the
// row lists the fused kernel uses, so agreement checks the kernel and the row lists together.
#pragma once
#include "nanoattn/ops.h"

namespace na {

// q: (B, H, T, D)  k: (B, H, S, D)  v: (B, H, S, Dv) -> (B, H, T, Dv).
// mask: broadcasts to (B, H, T, S) (e.g. (1, 1, T, S) for a pattern shared by every head);
// nonzero = not attended. fixed: undefined, or like mask: nonzero = the score is replaced by
// the constant sparse::kFixedScore (no gradient to q, k). A row with every entry masked
// outputs 0 with no gradient, as the fused kernel does.
Var masked_attention_reference(const Var& q, const Var& k, const Var& v, const Tensor& mask,
                               const Tensor& fixed, float scale);

}  // namespace na
