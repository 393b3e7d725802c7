// Dropout. The keep mask is a pure function of (key, element index): the backward recomputes
// it instead of storing it, and it is the same for any thread count.
#include <array>

#include "nanoattn/ops.h"
#include "nanoattn/rng.h"
#include "op_util.h"

namespace na {

namespace {

// Calls f(i, keep) for i in [b, e): element i is kept iff
// uniform01(philox(key, i / 4)[i % 4]) >= p. One Philox call serves four elements.
template <class F>
void for_each_keep(uint64_t key, float p, int64_t b, int64_t e, const F& f) {
  std::array<uint32_t, 4> w{};
  for (int64_t i = b; i < e; ++i) {
    if (i == b || i % 4 == 0) w = philox(key, static_cast<uint64_t>(i) / 4);
    f(i, uniform01(w[i % 4]) >= p);
  }
}

// src, dst: (n,). dst[i] (+)= keep(i) ? src[i] / (1 - p) : 0. Forward and backward alike.
void masked_scale(const float* src, float* dst, int64_t n, uint64_t key, float p, bool accumulate) {
  float scale = 1.0f / (1.0f - p);
  parallel_for(n, detail::kElemGrain, [&](int64_t b, int64_t e) {
    for_each_keep(key, p, b, e, [&](int64_t i, bool keep) {
      float v = keep ? src[i] * scale : 0.0f;  // dropped: exactly 0, even for inf / NaN
      dst[i] = accumulate ? dst[i] + v : v;
    });
  });
}

}  // namespace

// x: any shape -> same shape.
Var dropout(const Var& x, float p, uint64_t key) {
  NA_PROFILE_OP("dropout");
  detail::check_defined("dropout", x, "x");
  NA_CHECK(p >= 0.0f && p < 1.0f, "dropout", "p = ", p, " for x ", x.shape(),
           " must be in [0, 1) (the probability of zeroing an element)");
  if (p == 0.0f) return x;  // nothing dropped, nothing scaled
  Var out = tape().output(x.shape(), {x});
  masked_scale(x.value().data(), out.value().data(), x.numel(), key, p, false);
  record_backward(out, [=] {
    if (x.requires_grad())
      masked_scale(out.grad().data(), x.grad_acc().data(), x.numel(), key, p, true);
  });
  return out;
}

}  // namespace na
