// Angular locality-sensitive hashing and the bucket-chunked attention pattern of the
// `reformer` plugin (Kitaev et al. 2020, "Reformer: The Efficient Transformer").
#pragma once
#include <cstdint>

#include "nanoattn/tensor.h"
#include "sparse_attention.h"

namespace na::lsh {

// One random matrix per head with R * n_buckets / 2 columns (round r uses columns
// [r n_buckets / 2, (r + 1) n_buckets / 2)), N(0, 1) from `key`: (H, D, R * n_buckets / 2).
Tensor draw_rotations(int64_t heads, int64_t n_hashes, int64_t dim, int64_t n_buckets, uint64_t key);

// q: (B, H, T, D) -> buckets (B, H, R, T): for round r, token t goes to
//   argmax over [x R_r, -x R_r]  (n_buckets values; the first maximum on a tie)
// with x = q[b, h, t] and R_r = round r's columns of head h's matrix. The bucket of a token
// depends only on that token's q. Writes B * H * R * T ints.
void buckets(const Tensor& q, const Tensor& rotations, int64_t n_hashes, int64_t n_buckets,
             int32_t* out);

// The row lists of the fused kernel (one pattern per (batch, head), in the tape's scratch):
// in each round, the tokens of a bucket in position order are cut into chunks of `chunk`
// (a token of within-bucket rank i is in chunk i / chunk); a query sees the tokens of its
// bucket in its own chunk and the previous one (causal: only those at or before it). The
// query itself is listed as a fixed-score entry (seen only when nothing else is). A row is
// the concatenation of its rounds' lists, in round order, each in position order.
SparsePattern pattern(const int32_t* buckets, int64_t B, int64_t H, int64_t R, int64_t T,
                      int64_t n_buckets, int64_t chunk, bool causal);

}  // namespace na::lsh
