// Additive attention pooling, the building block of Fastformer (Wu et al. 2021): per (b, h),
// a softmax over positions of the scores a_t = scale * (w_h . x_t) pools the vectors x_t.
//
// Shapes: x: (B, H, T, d)   w: (H, d), one scoring vector per head
//
// causal:        g_t = sum_{s<=t} exp(a_s) x_s / sum_{s<=t} exp(a_s)     -> (B, H, T, d)
// bidirectional: g   = sum_s     exp(a_s) x_s / sum_s     exp(a_s)       -> (B, H, 1, d)
//
// The causal form is the recurrence s_t = s_{t-1} + exp(a_t) x_t, z_t = z_{t-1} + exp(a_t),
// g_t = s_t / z_t, computed stably with a running max m_t of the scores (s and z are kept
// scaled by exp(-m_t)), as one fused custom function with a hand-written backward; its
// per-token step is also the RNN form.
#pragma once
#include <cstdint>

#include "nanoattn/ops.h"

namespace na {

// The fused causal kernel: O(T d) time, saves only the scores and the running log-normaliser
// (B, H, T) besides its output. Parallel over (b, h), bitwise identical for any thread count.
Var causal_additive_pool(const Var& x, const Var& w, float scale);

// The bidirectional form composed of ops: a = scale * sum(x * w), alpha = softmax_t(a),
// g = alpha x. -> (B, H, 1, d)
Var bidirectional_additive_pool(const Var& x, const Var& w, float scale);

// The naive O(T^2) oracle for both forms: the score row a broadcast to a (T, T) matrix, a
// (causally masked) softmax over its rows, then P x. -> (B, H, T, d) in both modes.
Var additive_pool_reference(const Var& x, const Var& w, float scale, bool causal);

// The running state of one causal pool for one (b, h): s (d floats, scaled by exp(-m)), z and
// m. Start with s = 0, z = 0, m = -infinity.
// One token: updates (s, z, m) with x_t and writes g_t = s / z into g (d floats). Returns the
// log-normaliser m + log z. The fused forward runs exactly this per token, so the RNN form
// reproduces the parallel one bit for bit.
float additive_pool_token(int64_t d, const float* x_t, const float* w, float scale, float* s,
                          float& z, float& m, float* g);

}  // namespace na
