// layernorm and rmsnorm over the last axis. rmsnorm is layernorm without centering (the row
// mean is taken as 0) and without bias, so both share one forward and one backward kernel.
#include <algorithm>
#include <cmath>

#include "nanoattn/ops.h"
#include "op_util.h"

namespace na {

namespace {

// Rough cost of one element per pass, for sizing parallel chunks.
constexpr int64_t kNormCost = 4;

// x viewed as N rows of C, the optional weight, and the per-row statistics the forward saves
// (in the tape's arena) so the backward does not recompute them. xhat = (x - mean) * rstd.
struct Norm {
  int64_t N, C;
  bool center;         // layernorm: subtract the row mean; rmsnorm: don't
  const float* x;      // (N, C)
  const float* w;      // (C,) or null
  float* mean;         // (N,): the row mean, 0 without centering
  float* rstd;         // (N,): 1 / sqrt(var + eps), var about `mean`, biased like PyTorch
  float weight(int64_t c) const { return w ? w[c] : 1.0f; }
};

// y = xhat * w + b per row (w, b may be null); fills nm.mean and nm.rstd.  y: (N, C)
void norm_forward(const Norm& nm, const float* b, float eps, float* y) {
  const int64_t C = nm.C;
  parallel_for(nm.N, grain_for(kNormCost * C), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = nm.x + r * C;
      const float mu =
          nm.center ? detail::lane_sum(C, [&](int64_t c) { return xr[c]; }) / static_cast<float>(C) : 0.0f;
      // two passes: no cancellation when |mean| >> std
      const float var =
          detail::lane_sum(C, [&](int64_t c) { return (xr[c] - mu) * (xr[c] - mu); }) / static_cast<float>(C);
      float rs = 1.0f / std::sqrt(var + eps);
      nm.mean[r] = mu;
      nm.rstd[r] = rs;
      for (int64_t c = 0; c < C; ++c)
        y[r * C + c] = (xr[c] - mu) * rs * nm.weight(c) + (b ? b[c] : 0.0f);
    }
  });
}

// Backward for the rows [r0, r1), g: upstream gradient (N, C):
//   dx += rstd * (gw - mean(gw) - xhat * mean(gw * xhat)),  gw = g * w
// (without centering there is no mean(gw) term), and this chunk's partial sums
// pw += g * xhat (for dw), pb += g (for db) over its rows. dx, pw, pb may be null.
void norm_backward_rows(const Norm& nm, const float* g, int64_t r0, int64_t r1, float* dx,
                        float* pw, float* pb) {
  const int64_t C = nm.C;
  for (int64_t r = r0; r < r1; ++r) {
    const float *xr = nm.x + r * C, *gr = g + r * C;
    const float mu = nm.mean[r], rs = nm.rstd[r];
    if (pw)
      for (int64_t c = 0; c < C; ++c) pw[c] += gr[c] * ((xr[c] - mu) * rs);
    if (pb)
      for (int64_t c = 0; c < C; ++c) pb[c] += gr[c];
    if (!dx) continue;
    const float sum_gw = detail::lane_sum(C, [&](int64_t c) { return gr[c] * nm.weight(c); });
    const float sum_gwx =
        detail::lane_sum(C, [&](int64_t c) { return gr[c] * nm.weight(c) * ((xr[c] - mu) * rs); });
    float k_mean = nm.center ? sum_gw / static_cast<float>(C) : 0.0f;
    float k_xhat = sum_gwx / static_cast<float>(C);
    float* dr = dx + r * C;
    for (int64_t c = 0; c < C; ++c)
      dr[c] += rs * (gr[c] * nm.weight(c) - k_mean - (xr[c] - mu) * rs * k_xhat);
  }
}

// dst[c] += sum over chunks i, in index order, of part[i * C + c]: deterministic.
void add_chunk_sums(float* dst, const float* part, int64_t count, int64_t C) {
  parallel_for(C, grain_for(count), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      float acc = 0.0f;
      for (int64_t i = 0; i < count; ++i) acc += part[i * C + c];
      dst[c] += acc;
    }
  });
}

// x: (..., C)  weight, bias: (C,) or undefined  -> (..., C)
Var norm(const char* op, const Var& x, const Var& weight, const Var& bias, float eps, bool center) {
  NA_PROFILE_OP(op);
  detail::check_defined(op, x, "x");
  const Shape& xs = x.shape();
  NA_CHECK(xs.rank() >= 1 && xs[-1] > 0, op, "x ", xs, " needs a non-empty last axis");
  const int64_t C = xs[-1];
  for (const Var* p : {&weight, &bias})
    if (p->defined())
      NA_CHECK(p->shape() == Shape{C}, op, (p == &weight ? "weight " : "bias "), p->shape(),
               " must be (", C, ",) to match x ", xs);
  NA_CHECK(eps >= 0.0f, op, "eps must be >= 0, got ", eps);

  auto wants = [](const Var& v) { return v.defined() && v.requires_grad(); };
  Var out = tape().output(xs, wants(x) || wants(weight) || wants(bias));
  const int64_t N = xs.numel() / C;
  Norm nm{N, C, center, x.value().data(), weight.defined() ? weight.value().data() : nullptr,
          tape().scratch<float>(N), tape().scratch<float>(N)};
  norm_forward(nm, bias.defined() ? bias.value().data() : nullptr, eps, out.value().data());

  record_backward(out, [=] {
    const float* g = out.grad().data();
    float* dx = x.requires_grad() ? x.grad_acc().data() : nullptr;
    bool want_w = wants(weight), want_b = wants(bias);
    // Fixed row chunks (independent of the thread count); each writes its own partial dw, db.
    Chunks chunks(N, grain_for(kNormCost * C));
    float* pw = want_w ? tape().zeros({chunks.count, C}).data() : nullptr;
    float* pb = want_b ? tape().zeros({chunks.count, C}).data() : nullptr;
    parallel_for(chunks.count, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        norm_backward_rows(nm, g, chunks.begin(i), chunks.end(i), dx, pw ? pw + i * C : nullptr,
                           pb ? pb + i * C : nullptr);
    });
    if (want_w) add_chunk_sums(weight.grad_acc().data(), pw, chunks.count, C);
    if (want_b) add_chunk_sums(bias.grad_acc().data(), pb, chunks.count, C);
  });
  return out;
}

}  // namespace

Var layernorm(const Var& x, const Var& weight, const Var& bias, float eps) {
  return norm("layernorm", x, weight, bias, eps, /*center=*/true);
}

Var rmsnorm(const Var& x, const Var& weight, float eps) {
  return norm("rmsnorm", x, weight, Var(), eps, /*center=*/false);
}

}  // namespace na
