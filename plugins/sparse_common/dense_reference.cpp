#include "dense_reference.h"

#include "sparse_row.h"

namespace na {

Var masked_attention_reference(const Var& q, const Var& k, const Var& v, const Tensor& mask,
                               const Tensor& fixed, float scale) {
  Var s = na::scale(matmul(q, k, false, true), scale);  // (B, H, T, S)
  if (fixed.defined()) s = masked_fill(s, fixed, sparse::kFixedScore);
  // Masked scores get a huge negative value (exp gives exactly 0 unless the whole row is
  // masked), then their probabilities are zeroed outright: an all-masked row outputs 0.
  Var p = softmax(masked_fill(s, mask, -1e30f));
  return matmul(masked_fill(p, mask, 0.0f), v);
}

}  // namespace na
