// Building a SparsePattern in the tape's scratch memory (alive until tape().reset(), so past
// the backward) from a per-row enumerator, in O(entries) time and memory: never a T x T mask.
#pragma once
#include <algorithm>
#include <cstdint>

#include "nanoattn/parallel.h"
#include "sparse_attention.h"

namespace na {

// row(p, t, out) lists the entries of row t of pattern p: it writes them to `out` when out is
// not null, and returns how many there are either way (the same number both times). It is
// called twice per row (count, then fill), from parallel tasks: it must only read shared
// state. Call on the model's thread (it allocates on the tape).
template <class Row>
SparsePattern build_pattern(SparsePattern::Layout layout, int64_t count, int64_t rows,
                            int64_t keys, const Row& row) {
  SparsePattern pat;
  pat.layout = layout;
  pat.count = count;
  pat.rows = rows;
  pat.keys = keys;
  const int64_t n_rows = count * rows;
  int64_t* off = tape().scratch<int64_t>(count * (rows + 1));
  // Pass 1: each row's length into its end slot (row r of pattern p: slot p (rows + 1) + t + 1).
  parallel_for(n_rows, 256, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t p = i / rows, t = i % rows;
      off[p * (rows + 1) + t + 1] = row(p, t, static_cast<int32_t*>(nullptr));
    }
  });
  int64_t total = 0, longest = 0;
  for (int64_t p = 0; p < count; ++p) {
    off[p * (rows + 1)] = total;
    for (int64_t t = 0; t < rows; ++t) {
      const int64_t n = off[p * (rows + 1) + t + 1];
      longest = std::max(longest, n);
      total += n;
      off[p * (rows + 1) + t + 1] = total;
    }
  }
  int32_t* index = tape().scratch<int32_t>(std::max<int64_t>(1, total));
  // Pass 2: fill.
  parallel_for(n_rows, 256, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t p = i / rows, t = i % rows;
      row(p, t, index + off[p * (rows + 1) + t]);
    }
  });
  pat.offsets = off;
  pat.index = index;
  pat.max_row = longest;
  return pat;
}

// Appends to a row's list while counting (out may be null: count only).
struct RowWriter {
  int32_t* out;
  int64_t n = 0;
  void add(int64_t s) {
    if (out) out[n] = static_cast<int32_t>(s);
    ++n;
  }
  void add_fixed(int64_t s) {
    if (out) out[n] = SparsePattern::fixed_entry(s);
    ++n;
  }
};

}  // namespace na
