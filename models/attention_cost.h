// What one attention layer costs per token beyond its q/k/v/output projections (those are
// matrix weights, priced by cost_model.h as 6 x their size). The one place that knows each
// plugin's options: feature counts, key and value widths, how many keys a query sees.
//
// Conventions: a multiply-add is 2 FLOPs; training = forward + backward, and the backward of a
// product costs twice its forward (gradients of both operands), so a trained product costs
// 3 x its forward; a product with a frozen operand (FAVOR's random matrix) 2 x. Elementwise work
// (feature maps, softmax exponentials, sums for normalisation) is not counted, as in the usual
// 6N + attention estimates (Kaplan et al. 2020; PaLM, Chowdhery et al. 2022). Recomputation in a
// backward (the delta rule's checkpoints, chunked feed-forward) is not counted: these are model
// FLOPs, not hardware FLOPs.
//
// Per layer application, per token, with H heads, key width dk and value width dv per head:
//   softmax-like (softmax, local, longformer, sparse, reformer, unknown plugins):
//       6 H (dk + dv) L         scores q.k and the weighted sum of values over L keys
//     L = the mean number of keys a query sees: causal (T + 1) / 2 (query t sees t + 1 keys; the
//     fused kernel computes only the visible columns, so this is also the work done), T
//     bidirectional; local and longformer: their window (mean of min(window, t + 1) causal);
//     sparse, reformer and unknown plugins: as softmax (an upper bound, noted in ModelCost).
//     With dk = dv = C / H this is 12 C L.
//   linformer: 12 C k (softmax over its k projected keys) + 12 C k (projecting K and V along
//     the sequence by E, F: 2 k dk per token and head each, trained).
//   linear (F features per head): 12 F dv + 9 F per head: forward 2 F dv for the state update
//     S += phi(k) v^T, 2 F dv for the readout phi(q)^T S, F for z += phi(k) and 2 F for
//     phi(q) . z (without normalize: 12 F dv); x 3 for the backward.
//   delta (F features, d = dv): 18 F d per head: the linear update and readout plus the delta
//     rule's retrieval S phi(k) (2 F d forward), x 3; plus 6 H C for beta's projection.
//   FAVOR feature maps (linear, delta) add 8 m dk per head: phi(q), phi(k) each need W x
//     (2 m dk forward) with W frozen (x 2).
//   fastformer: 6 x its pooling weights (query_att, key_att: 2 C per token).
#pragma once
#include <cstdint>
#include <string>

#include "block.h"

namespace na {

struct AttentionCost {
  std::string kind;          // "softmax", "linear", "delta", "linformer", "fastformer"
  int64_t heads = 0, key_dim = 0, value_dim = 0;
  int64_t features = 0;      // F per head (linear, delta); 0 otherwise
  double keys_per_query = 0; // L of a softmax-like plugin; 0 otherwise
  double flops_per_token = 0;  // training (forward + backward), beyond the projections
  std::string approximation;   // "" or why the formula is only a bound for this plugin
};

// F per head of a linear-like plugin's feature map: elu, relu: dk; dpfp: 2 dk nu; favor: m
// (features, 0 = dk). Throws for plugins without features.
int64_t feature_count(const AttentionUse& a);

// The cost of one application of `a` on sequences of T tokens.
AttentionCost attention_cost(const AttentionUse& a, int64_t T);

}  // namespace na
