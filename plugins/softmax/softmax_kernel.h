// Scaled dot-product (softmax) attention as one fused custom function, flash-attention style,
// and the naive composite it is tested against.
//
//   out[b,h,t] = sum_s P[t,s] v[b,h,s],   P[t,:] = softmax_s(scale * q[b,h,t] . k[b,h,s])
//
// over the keys s that row t may see: s <= t when causal, and never a key whose
// key_padding_mask entry is nonzero. A row that sees no key at all (every visible key is
// padding) outputs exactly 0 and passes no gradient to q, k or v. (The textbook formula would
// give 0/0 = NaN there; PyTorch's SDPA gives NaN too. Zero is the useful answer for padded
// batches: such rows are padding themselves and are ignored by the loss.)
//
// Memory: the fused kernel never holds a T x S matrix. It walks the queries in blocks of
// kSoftmaxAttentionRowBlock rows, and keeps one block of scores per parallel slot (at most
// kSoftmaxAttentionSlots slots) plus the per-row logsumexp (B, H, T) saved for the backward,
// which recomputes the probabilities block by block.
//
// Determinism: work is split over (batch, head) pairs only; inside a pair the row blocks run
// in order, so the results are bitwise identical for any number of threads.
#pragma once
#include <cstdint>

#include "nanoattn/ops.h"

namespace na {

inline constexpr int64_t kSoftmaxAttentionRowBlock = 64;  // query rows per block
inline constexpr int64_t kSoftmaxAttentionSlots = 64;     // most score blocks alive at once

// q: (B, H, T, D)  k: (B, H, S, D)  v: (B, H, S, Dv)  key_padding_mask: (B, S) or null,
// nonzero = padding  -> (B, H, T, Dv). causal requires T == S (row t sees keys s <= t).
// scale multiplies the scores (usually 1 / sqrt(D)). Fused forward and backward; gradients
// accumulate into q, k and v (which may be the same Var, e.g. shared-QK attention). The
// backward reads the mask again: keep it alive until backward has run (a handle to it is kept,
// which owns heap-allocated storage but not borrowed storage).
Var softmax_attention(const Var& q, const Var& k, const Var& v, float scale, bool causal,
                      const Tensor* key_padding_mask);

// The same function from primitive ops (matmul, scale, masked_fill, softmax, matmul): O(T S)
// memory, the oracle for the fused kernel. Same shapes, same checks, same all-masked-row rule.
Var softmax_attention_reference(const Var& q, const Var& k, const Var& v, float scale,
                                bool causal, const Tensor* key_padding_mask);

// One query against a KV cache (the step of a KV-cached generation), on raw arrays:
// out (Dv) = sum_j P[j] V[j], P = softmax_j(scale * q . K[j]) over the n cached keys, stored
// transposed: key j's component c is Kt[c * ldk + j] (ldk >= n), so the scores are D passes
// over contiguous memory that vectorise; V (n, Dv) row-major; scores: n floats of scratch. The
// fused forward's row operations (its max, exp and sum; 1/sum applied to the output), so a
// cached step matches the parallel forward's row to rounding. Not differentiable. Serial:
// callers parallelise over (batch, head).
void softmax_attention_cached_row(int64_t n, int64_t D, int64_t Dv, const float* q, const float* Kt,
                                  int64_t ldk, const float* V, float scale, float* scores, float* out);

}  // namespace na
