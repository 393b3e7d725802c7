// Differentiable ops. Each takes and returns Vars, computes its forward at call time and
// records its backward on the current tape (see nanoattn/tape.h). Gradients accumulate.
//
// Dimension glossary used in shape comments:
//   B  batch            T  time (sequence length)     S  key/source length
//   C  channels/model   H  heads                      D  head dim
//   V  vocabulary       N  rows (flattened leading dims)
//   K  reduction dim of a matmul; kernel width of a conv   G  conv groups
//   "..." any number of leading dims (total rank <= 5)
//
// Errors: a shape that does not fit throws na::Error naming the op and every shape involved.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "nanoattn/tape.h"

namespace na {

// ---- matmul.cpp ---------------------------------------------------------------------------
// a: (..., M, K) [or (..., K, M) if trans_a]   b: (..., K, N) [or (..., N, K) if trans_b], or
// a 2-D b shared by every batch   -> (..., M, N)
Var matmul(const Var& a, const Var& b, bool trans_a = false, bool trans_b = false);
// x: (..., IN)  w: (OUT, IN) (PyTorch layout)  bias: (OUT,) or undefined  -> (..., OUT)
Var linear(const Var& x, const Var& w, const Var& bias = Var());

// ---- gelu_linear.cpp ----------------------------------------------------------------------
// linear(gelu(h), w, bias) without storing gelu(h): it is recomputed in the backward, chunk_rows
// rows at a time (0 = about 4 MiB of rows). A feed-forward layer then keeps one hidden tensor.
Var gelu_linear(const Var& h, const Var& w, const Var& bias = Var(), int64_t chunk_rows = 0);

// ---- elementwise.cpp: broadcasting binary ops (NumPy rules) -------------------------------
Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var div(const Var& a, const Var& b);
Var scale(const Var& x, float s);       // x * s
Var add_scalar(const Var& x, float s);  // x + s
inline Var operator+(const Var& a, const Var& b) { return add(a, b); }
inline Var operator-(const Var& a, const Var& b) { return sub(a, b); }
inline Var operator*(const Var& a, const Var& b) { return mul(a, b); }
inline Var operator/(const Var& a, const Var& b) { return div(a, b); }
inline Var operator*(const Var& a, float s) { return scale(a, s); }
// The shape both broadcast to; throws naming `op` and both shapes if they don't.
Shape broadcast_shape(const char* op, const Shape& a, const Shape& b);

// ---- unary.cpp ----------------------------------------------------------------------------
Var exp(const Var& x);
Var log(const Var& x);
Var elu(const Var& x, float alpha = 1.0f);
Var relu(const Var& x);
Var gelu(const Var& x);  // exact erf form: x * Phi(x)
Var tanh(const Var& x);
Var sigmoid(const Var& x);
Var softplus(const Var& x);  // log(1 + exp(x)), stable

// ---- reduce.cpp ---------------------------------------------------------------------------
// Along one axis (negative counts from the end); keepdim keeps it with extent 1.
Var sum(const Var& x, int axis, bool keepdim = false);
Var mean(const Var& x, int axis, bool keepdim = false);
Var max(const Var& x, int axis, bool keepdim = false);  // gradient to the first maximum
Var sum_all(const Var& x);   // -> (1,)
Var mean_all(const Var& x);  // -> (1,)

// ---- softmax.cpp: along the last axis -----------------------------------------------------
// x: (..., T, S). causal: row t sees only columns s <= t (masked entries are exactly 0 in
// softmax, -inf in log_softmax).
Var softmax(const Var& x, bool causal = false);
Var log_softmax(const Var& x, bool causal = false);

// ---- norm.cpp: over the last axis (C) -----------------------------------------------------
// x: (..., C)  weight, bias: (C,) or undefined.  Biased variance, like PyTorch.
Var layernorm(const Var& x, const Var& weight, const Var& bias, float eps = 1e-5f);
Var rmsnorm(const Var& x, const Var& weight, float eps = 1e-6f);

// ---- embedding.cpp ------------------------------------------------------------------------
// table: (V, C)  ids: numel(ids_shape) token ids in [0, V)  -> ids_shape + (C,)
Var embedding(const Var& table, std::span<const int32_t> ids, const Shape& ids_shape);

// ---- random_ops.cpp -----------------------------------------------------------------------
// Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p).
// The mask depends only on (key, element index). Identity when p == 0.
Var dropout(const Var& x, float p, uint64_t key);

// ---- cross_entropy.cpp --------------------------------------------------------------------
// logits: (..., V)  targets: one per row -> (1,): mean over rows whose target != ignore_index
// of -(1-ls) log p[target] - ls/V sum_v log p[v]  (PyTorch's label smoothing).
Var cross_entropy(const Var& logits, std::span<const int32_t> targets,
                  float label_smoothing = 0.0f, int32_t ignore_index = -100);

// ---- distill_loss.cpp ---------------------------------------------------------------------
// Knowledge distillation (DistilBERT / Hinton et al.): per row (token), with tau = temperature,
//   loss_row = alpha CE(target) + (1 - alpha) tau^2 KL(q_tau || s_tau),   returned as the mean.
// Full teacher (k = 0): q_tau = softmax(teacher log-probs / tau), s_tau = softmax(logits / tau)
// over the V tokens. Top-k teacher: the teacher gives k distinct ids and their log-probs; both
// distributions are first coarsened to k + 1 classes (the k ids, and "rest" = every other token,
// the teacher's rest mass being 1 - sum of its k probabilities, clamped at 0; the student's the
// log-sum-exp of its other logits), then tempered over those classes (log-probs / tau,
// renormalised). With k = V there is no rest class and it equals the full loss. Teacher rows
// need not be normalised (float16 dumps): tempering renormalises them. alpha = 1 gives
// cross_entropy(logits, targets) bit for bit, value and gradient.
struct TeacherRows {
  std::span<const float> logprobs;  // (N, V) full log-probabilities, or (N, k) with `ids`
  std::span<const int32_t> ids;     // empty: full; else (N, k): the tokens of logprobs' columns
  int64_t k = 0;                    // 0: full
};
struct DistillParts {
  double ce = 0;  // mean cross-entropy (nats) of the rows
  double kl = 0;  // mean KL(q_tau || s_tau) (nats, without the tau^2 factor)
};
// logits: (..., V)  targets: one per row  teacher: one row per logits row  -> (1,)
Var distill_loss(const Var& logits, std::span<const int32_t> targets, const TeacherRows& teacher,
                 float alpha, float temperature, DistillParts* parts = nullptr);

// ---- scan.cpp -----------------------------------------------------------------------------
// Inclusive prefix sum along `axis` (the time axis of (B, T, ...)).
Var cumsum(const Var& x, int axis);

// ---- shape_ops.cpp ------------------------------------------------------------------------
Var reshape(const Var& x, Shape shape);  // a view; one extent may be -1
// out.dim(i) = x.dim(perm[i]); materialises.
Var permute(const Var& x, const std::vector<int>& perm);
Var transpose(const Var& x, int axis_a, int axis_b);
// [start, end) along axis.
Var slice(const Var& x, int axis, int64_t start, int64_t end);
// x: (B, T, n) -> (B, H, T, d): the heads in columns [start, start + heads head_dim), as
// permute(reshape(slice(x, -1, start, ...), {B, T, H, d}), {0, 2, 1, 3}) but one copy.
Var split_heads(const Var& x, int64_t start, int64_t heads, int64_t head_dim);
Var concat(const std::vector<Var>& xs, int axis);
// mask broadcasts to x; where mask != 0 the output is `value` (and gets no gradient).
Var masked_fill(const Var& x, const Tensor& mask, float value);

// ---- conv.cpp -----------------------------------------------------------------------------
// Causal grouped 1-D convolution over time (left padding K-1, as PyTorch conv1d):
// x: (B, T, Cin)  w: (Cout, Cin/G, K)  bias: (Cout,) or undefined  -> (B, T, Cout)
// y[b,t,o] = bias[o] + sum_{c in group(o), k} w[o, c - g*Cin/G, k] * x[b, t-(K-1)+k, c]
Var causal_conv1d(const Var& x, const Var& w, const Var& bias, int groups);

}  // namespace na
