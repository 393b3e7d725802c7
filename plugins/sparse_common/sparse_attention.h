// Sparse softmax attention over an explicit pattern: for each query row, a list of the key
// positions it attends to (CSR-like: offsets + indices, O(T * keys per row) memory), as one
// fused custom function with a hand-written backward. Used by the local, longformer, sparse
// and reformer plugins; each builds its own pattern (sparse_pattern.h) and checks it against
// a dense T x T masked softmax built from ordinary ops (dense_reference.h).
//
//   out[b,h,t] = sum_{e in row t} P[t,e] v[b,h,s_e],   P[t,:] = softmax_e(score(t, e))
//   score(t, e) = scale * q[b,h,t] . k[b,h,s_e]    (or the constant sparse::kFixedScore for
//                                                   an entry marked fixed, see below)
//
// A key listed twice in a row counts twice (that is how Reformer's hash rounds combine: one
// softmax over the concatenation of the rounds' lists is the logsumexp-weighted average of
// the per-round softmaxes). A row with no entries outputs 0 and passes no gradient.
//
// Forward: per row, the scores of its entries, their max, exp and sum in a row-sized scratch,
// out = sum p v / sum; only the row's max and 1 / sum are saved ((B, H, T, 2): the softmax
// statistics of the flash kernel, kept as two numbers, see sparse_row.h). Backward recomputes
// p = exp(score - max) / sum row by row:
//   dv[s_e] += p_e dO[t]     ds_e = p_e (dO[t] . v[s_e] - dO[t] . out[t])
//   dq[t] += scale ds_e k[s_e]     dk[s_e] += scale ds_e q[t]      (not for fixed entries)
//
// Threads and determinism: the forward runs (batch, head, block of kSparseRowBlock rows) items
// in parallel, each row on its own. The backward scatters into dk and dv, so it runs one
// (batch, head) pair per task, rows in order. Both give bitwise the same numbers on any
// number of threads.
#pragma once
#include <cstdint>

#include "nanoattn/ops.h"

namespace na {

inline constexpr int64_t kSparseRowBlock = 64;  // forward: query rows per parallel item
inline constexpr int64_t kSparseSlots = 64;     // most scratch rows alive at once

struct SparsePattern {
  // Which pattern a (batch, head) pair uses: one for all (Shared), pattern h % count
  // (PerHead), or its own, pattern b * H + h (PerTask: count == B * H).
  enum class Layout { Shared, PerHead, PerTask };
  Layout layout = Layout::Shared;
  int64_t count = 1;  // patterns held
  int64_t rows = 0;   // query rows of each pattern (T)
  int64_t keys = 0;   // key positions are in [0, keys) (S)
  // Pattern p, row t: entries [offsets[p * (rows + 1) + t], offsets[p * (rows + 1) + t + 1])
  // of `index`. Offsets are absolute positions in `index`.
  const int64_t* offsets = nullptr;
  // Key positions s; an entry stored as fixed_entry(s) = -(s + 1) is key s with the constant
  // score sparse::kFixedScore.
  const int32_t* index = nullptr;
  int64_t max_row = 0;  // most entries in any row (the kernel's scratch per row)

  static int32_t fixed_entry(int64_t s) { return static_cast<int32_t>(-(s + 1)); }
  // The pattern (b, h) uses.
  int64_t pattern_of(int64_t b, int64_t h, int64_t H) const {
    return layout == Layout::Shared ? 0 : layout == Layout::PerHead ? h % count : b * H + h;
  }
};

// q: (B, H, T, D)  k: (B, H, S, D)  v: (B, H, S, Dv)  -> (B, H, T, Dv), with pattern.rows == T
// and pattern.keys == S. The pattern's arrays must stay alive until the backward has run
// (build them in the tape's scratch: sparse_pattern.h). Gradients accumulate into q, k and v
// (which may share buffers).
Var sparse_attention(const Var& q, const Var& k, const Var& v, const SparsePattern& pattern,
                     float scale);

}  // namespace na
