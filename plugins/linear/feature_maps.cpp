// Feature maps for linear attention, built from nanoattn ops (see feature_maps.h).
#include "feature_maps.h"

#include <cmath>

#include "nanoattn/parallel.h"
#include "nanoattn/profile.h"
#include "nanoattn/rng.h"
#include "nanoattn/vmath.h"

namespace na::feature_maps {

namespace {

void check_input(const char* op, const Var& x) {
  NA_CHECK(x.defined(), op, "input x is undefined");
  NA_CHECK(x.rank() >= 1 && x.dim(-1) > 0, op, "x ", (x.defined() ? x.shape() : Shape{}),
           " needs a last axis (the head dim d) of extent >= 1");
}

}  // namespace

Kind parse(const std::string& n) {
  if (n == "elu") return Kind::Elu;
  if (n == "relu") return Kind::Relu;
  if (n == "dpfp") return Kind::Dpfp;
  if (n == "favor") return Kind::Favor;
  throw Error("linear attention",
              cat("unknown feature_map '", n, "': the known ones are elu, relu, dpfp, favor"));
}

const char* name(Kind kind) {
  switch (kind) {
    case Kind::Elu: return "elu";
    case Kind::Relu: return "relu";
    case Kind::Dpfp: return "dpfp";
    case Kind::Favor: return "favor";
  }
  return "?";
}

int64_t feature_dim(Kind kind, int64_t d, int64_t nu, int64_t m) {
  switch (kind) {
    case Kind::Elu:
    case Kind::Relu: return d;
    case Kind::Dpfp: return 2 * d * nu;
    case Kind::Favor: return m;
  }
  return d;
}

// elu(x) + 1 > 0 in one vectorised pass (elu_plus_one) instead of elu's libm expm1 and a
// separate add (the two were 6% of a linear-attention training step).
Var elu(const Var& x) {
  check_input("elu feature map", x);
  NA_PROFILE_OP("elu_feature_map");
  Var out = tape().output(x.shape(), {x});
  const float* xp = x.value().data();
  float* y = out.value().data();
  constexpr int64_t kGrain = 1 << 14;
  parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = elu_plus_one(xp[i]);
  });
  record_backward(out, [=] {
    if (!x.requires_grad()) return;
    const float* xv = x.value().data();
    const float* yv = out.value().data();
    const float* g = out.grad().data();
    float beta;  // a fresh gradient is written, not zeroed and added to
    float* d = x.grad_sink(beta).data();
    parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) {
      if (beta != 0.0f)
        for (int64_t i = b; i < e; ++i) d[i] += g[i] * (xv[i] > 0.0f ? 1.0f : yv[i]);
      else
        for (int64_t i = b; i < e; ++i) d[i] = g[i] * (xv[i] > 0.0f ? 1.0f : yv[i]);
    });
  });
  return out;
}

Var relu(const Var& x) {
  check_input("relu feature map", x);
  return na::relu(x);
}

Var roll_last(const Var& x, int64_t shift) {
  check_input("roll", x);
  const int64_t d = x.dim(-1);
  const int64_t s = ((shift % d) + d) % d;
  if (s == 0) return x;
  // out = [x[d-s:], x[:d-s]]: out[j] = x[(j - s) mod d]
  return concat({slice(x, -1, d - s, d), slice(x, -1, 0, d - s)}, -1);
}

Var dpfp(const Var& x, int64_t nu) {
  check_input("dpfp feature map", x);
  const int64_t d = x.dim(-1);
  NA_CHECK(nu >= 1 && nu <= 2 * d, "dpfp feature map", "nu = ", nu, " must be in [1, 2d] = [1, ",
           2 * d, "] for x ", x.shape(), " (a roll by more than 2d repeats a feature)");
  Var xp = concat({na::relu(x), na::relu(scale(x, -1.0f))}, -1);  // (..., 2d)
  std::vector<Var> parts;
  for (int64_t i = 1; i <= nu; ++i) parts.push_back(mul(xp, roll_last(xp, i)));
  return parts.size() == 1 ? parts[0] : concat(parts, -1);  // (..., 2 d nu)
}

void favor_fill(const Tensor& w, uint64_t key) {
  NA_CHECK(w.defined() && w.rank() == 2, "favor feature map", "the random matrix must be (m, d)");
  fill_normal(w, key, 0.0f, 1.0f);
}

Tensor favor_draw(int64_t m, int64_t d, uint64_t key) {
  NA_CHECK(m >= 1 && d >= 1, "favor feature map", "cannot draw a (", m, ", ", d,
           ") random matrix: m (features) and d must be >= 1");
  Tensor w = Tensor::empty({m, d});
  favor_fill(w, key);
  return w;
}

Var favor(const Var& x, const Tensor& w) {
  check_input("favor feature map", x);
  NA_CHECK(w.defined() && w.rank() == 2 && w.dim(1) == x.dim(-1) && w.dim(0) >= 1,
           "favor feature map", "random matrix ", (w.defined() ? w.shape() : Shape{}),
           " must be (m, d) with d = the last dim of x ", x.shape());
  const int64_t d = x.dim(-1), m = w.dim(0);
  Shape out_shape = x.shape();
  out_shape[-1] = m;
  Var xs = reshape(scale(x, static_cast<float>(std::pow(static_cast<double>(d), -0.25))), {-1, d});
  Var proj = matmul(xs, tape().leaf(w), false, /*trans_b=*/true);     // (N, m): W x'
  Var half_sq = scale(sum(mul(xs, xs), -1, /*keepdim=*/true), 0.5f);  // (N, 1): |x'|^2 / 2
  Var phi =
      scale(exp(sub(proj, half_sq)), static_cast<float>(1.0 / std::sqrt(static_cast<double>(m))));
  return reshape(phi, out_shape);
}

}  // namespace na::feature_maps
