// One query row of sparse softmax attention, shared by the fused kernel (sparse_attention.cpp)
// and the RNN forms that attend over a ring buffer (plugins/local): both run this same code
// on the same keys in the same order, so stepping reproduces the parallel form bit for bit
// (given bitwise-equal q, k, v).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace na::sparse {

// The score of an entry marked "fixed" (e.g. Reformer's query attending to itself): low
// enough that any real key wins, finite so that a row holding only fixed entries still has a
// proper softmax (uniform over them). Its gradient with respect to q and k is zero.
inline constexpr float kFixedScore = -1e5f;
inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// exp(x) within ~1 ulp of expf for x in [-87, 1], exactly 0 below -87.34 (Cephes expf, as in
// plugins/softmax/softmax_kernel.cpp). Branch-free so that row loops vectorise.
inline float exp_approx(float x) {
  constexpr float kLo = -87.3365f, kHi = 88.3762f;
  const float xc = std::min(std::max(x, kLo), kHi);
  const float k = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = xc - k * 0.693359375f;
  r = r + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float two_k;
  std::memcpy(&two_k, &bits, sizeof two_k);
  return x < kLo ? 0.0f : y * two_k;
}

// sum a[i] b[i] in 8 interleaved partial sums combined in a fixed order (vectorises; the
// result depends only on the inputs).
inline float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  for (; i < n; ++i) acc[0] += a[i] * b[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// y += a x
inline void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

inline float sum_lanes(const float* x, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += x[i + l];
  for (; i < n; ++i) acc[0] += x[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// A row's softmax statistics: p_e = exp(score_e - max) / sum. (Kept apart rather than as one
// logsumexp: max + log(sum) in float loses the small log(sum) next to a large |max|, e.g. a
// row of fixed entries at -1e5, and the backward's recomputed p would be off by ~1e-3.)
struct RowStats {
  float max = kNegInf;  // -inf: the row has no entries
  float sum = 0.0f;
};

// out = sum_e p_e val(e),  p = softmax_e(score_e),  score_e = scale q . key(e), or kFixedScore
// when key(e) is null. q: (D), out: (Dv), p: scratch of n floats (left holding the
// unnormalised exp(score - max)). Returns the row's statistics; out = 0 if n == 0.
template <class Key, class Val>
RowStats attend_row(const float* q, int64_t n, const Key& key, const Val& val, int64_t D, int64_t Dv,
                 float scale, float* p, float* out) {
  std::fill(out, out + Dv, 0.0f);
  if (n == 0) return {};
  float m = kNegInf;
  for (int64_t e = 0; e < n; ++e) {
    const float* kp = key(e);
    p[e] = kp ? scale * dot(q, kp, D) : kFixedScore;
    m = std::max(m, p[e]);
  }
  for (int64_t e = 0; e < n; ++e) p[e] = exp_approx(p[e] - m);
  const float sum = sum_lanes(p, n);  // >= 1: the maximum contributes exp(0)
  for (int64_t e = 0; e < n; ++e) axpy(p[e], val(e), out, Dv);
  const float inv = 1.0f / sum;
  for (int64_t c = 0; c < Dv; ++c) out[c] *= inv;
  return {m, sum};
}

}  // namespace na::sparse
