// The delta rule of Schlag, Irie and Schmidhuber (2021, "Linear Transformers Are Secretly Fast
// Weight Programmers"), on features that a feature map (plugins/linear/feature_maps.h) already
// applied to the queries and keys.
//
// Shapes: phi_q, phi_k: (B, H, T, F)   v: (B, H, T, Dv)   beta: (B, H, T)   -> (B, H, T, Dv)
//
// Per (b, h), with S_0 = 0 (Dv x F), for t = 1..T:
//   vbar_t = S_{t-1} phi_k_t                      the value currently stored under key k_t
//   S_t    = S_{t-1} + beta_t (v_t - vbar_t) phi_k_t^T
//   y_t    = S_t phi_q_t
// Causal by construction (S_t depends on tokens <= t only).
#pragma once
#include <cstdint>

#include "nanoattn/ops.h"

namespace na {

// The fused kernel: a custom function with a hand-written backward through time, sequential
// over t and parallel over (b, h), bitwise identical for any thread count. O(T F Dv) time.
// Memory: the forward saves S every `checkpoint_every` steps (0: ceil(sqrt(T))), i.e.
// ceil(T / C) (F x Dv) matrices per (b, h); the backward recomputes one chunk of C states at a
// time from its checkpoint (C + 2 matrices of scratch per (b, h)). No (T, F, Dv) tensor.
Var delta_rule(const Var& phi_q, const Var& phi_k, const Var& v, const Var& beta,
               int64_t checkpoint_every);

// The checkpoint interval delta_rule uses for length T.
int64_t delta_rule_checkpoint_interval(int64_t T, int64_t checkpoint_every);

// One step of the recurrent form for BH independent (b, h) pairs on raw arrays: updates
// S (BH, Dv, F) in place and writes out (BH, Dv). Runs the fused forward's very code per
// token, so stepping reproduces it bit for bit. Not differentiable.
// phi_q, phi_k: (BH, F)   v: (BH, Dv)   beta: (BH)
void delta_rule_step(int64_t BH, int64_t F, int64_t Dv, const float* phi_q, const float* phi_k,
                     const float* v, const float* beta, float* S, float* out);

// The naive oracle from primitive ops: a loop over t of matmul / sub / mul / add on a
// (B, H, Dv, F) state, O(T) tape entries and O(T F Dv) memory.
Var delta_rule_reference(const Var& phi_q, const Var& phi_k, const Var& v, const Var& beta);

}  // namespace na
