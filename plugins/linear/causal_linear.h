// Linear attention kernels (Katharopoulos et al. 2020, "Transformers are RNNs"), on features
// that a feature map (feature_maps.h) already applied to the queries and keys, or (the fused
// causal kernel with KernelMap::EluPlusOne) on the raw queries and keys.
//
// Shapes: phi_q, phi_k: (B, H, T, F)   v: (B, H, T, Dv)   -> (B, H, T, Dv)
//   F  feature dim (the feature map's output width)   Dv  value head dim
//
// normalize = true:   out_t = phi_q_t^T S_t / (phi_q_t . z_t + eps)
// normalize = false:  out_t = phi_q_t^T S_t
// causal:        S_t = sum_{s<=t} phi_k_s v_s^T  (F x Dv),  z_t = sum_{s<=t} phi_k_s  (F)
// bidirectional: the same sums over every s (phi_k and v may then have their own length S).
// eps is added to the denominator, no 1/sqrt(d) scaling (the reference model's convention).
#pragma once
#include "nanoattn/ops.h"

namespace na {

// What causal_linear_attention does to its first two inputs: nothing (they are features
// already), or it applies elu + 1 itself, token by token, so that the features are never
// stored (and their gradient goes straight to the raw q and k).
enum class KernelMap { None, EluPlusOne };

// The fused causal kernel: a custom function with a hand-written backward (one tape entry),
// O(T F Dv) time, O(F Dv) extra memory per (b, h) — no (T, F, Dv) intermediate. Parallel over
// (b, h); bitwise identical for any thread count. With map = EluPlusOne, phi_q and phi_k are
// the raw q and k, and the result equals the kernel on elu_plus_one features bit for bit.
Var causal_linear_attention(const Var& phi_q, const Var& phi_k, const Var& v, float eps,
                            bool normalize, KernelMap map = KernelMap::None);

// The same kernel on the packed projection qkv (B, T, W): token t's q of head h is
// qkv[b, t, q_col + h F : q_col + (h + 1) F], likewise k at k_col (F wide) and v at v_col (Dv
// wide). Returns (B, T, H Dv), the heads side by side, as the output projection takes them: no
// (B, H, T, d) copies of q, k, v and no permute of the result. The same numbers, bit for bit,
// as causal_linear_attention on the split heads.
Var causal_linear_attention_packed(const Var& qkv, int64_t heads, int64_t F, int64_t Dv,
                                   int64_t q_col, int64_t k_col, int64_t v_col, float eps,
                                   bool normalize, KernelMap map = KernelMap::None);

// One step of the recurrent form on raw arrays, for BH independent (b, h) pairs: updates
// S (BH, F, Dv) += phi_k v^T and z (BH, F) += phi_k in place and writes out (BH, Dv). Runs the
// very operations of causal_linear_attention's forward for one token, so stepping through a
// sequence reproduces the fused kernel's output bit for bit. Not differentiable (raw floats).
// phi_q, phi_k: (BH, F)   v: (BH, Dv)
void linear_attention_step(int64_t BH, int64_t F, int64_t Dv, const float* phi_q,
                           const float* phi_k, const float* v, float* S, float* z, float* out,
                           float eps, bool normalize);

// The bidirectional (non-causal) form as a composite of ops, O(T F Dv):
// KV = phi_k^T v (B, H, F, Dv), num = phi_q KV, den = phi_q . sum_s phi_k + eps.
// phi_q: (B, H, T, F)  phi_k: (B, H, S, F)  v: (B, H, S, Dv) -> (B, H, T, Dv)
Var bidirectional_linear_attention(const Var& phi_q, const Var& phi_k, const Var& v, float eps,
                                   bool normalize);

// The naive O(T^2) oracle, built from primitive ops: A = phi_q phi_k^T (B, H, T, S), causal
// entries s > t zeroed by masked_fill, num = A v, den = sum_s A + eps, out = num / den.
Var linear_attention_reference(const Var& phi_q, const Var& phi_k, const Var& v, float eps,
                               bool normalize, bool causal);

}  // namespace na
