// gelu_linear: linear(gelu(h), w, b) without keeping gelu(h). The GELU is applied chunk by
// chunk of rows into one small scratch buffer, in the forward and again in the backward, so a
// feed-forward layer stores its hidden layer once (h) instead of twice (h and gelu(h)).
#include <algorithm>

#include "nanoattn/blas.h"
#include "nanoattn/ops.h"
#include "nanoattn/vmath.h"
#include "op_util.h"

namespace na {

namespace {

constexpr int64_t kChunkFloats = int64_t(1) << 20;  // 4 MiB of scratch: GEMMs stay large

// rows cut into chunks of `size` rows (the last may be shorter).
struct RowChunks {
  int64_t rows, size;
  int64_t count() const { return (rows + size - 1) / size; }
  int64_t begin(int64_t i) const { return i * size; }
  int64_t length(int64_t i) const { return std::min(size, rows - i * size); }
};

// a[i] = gelu(h[i]) for n floats.
void gelu_into(const float* h, int64_t n, float* a) {
  parallel_for(n, detail::kElemGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) a[i] = gelu_value(h[i]);
  });
}

}  // namespace

Var gelu_linear(const Var& h, const Var& w, const Var& bias, int64_t chunk_rows) {
  NA_PROFILE_OP("gelu_linear");
  detail::check_defined("gelu_linear", h, "h");
  detail::check_defined("gelu_linear", w, "w");
  const Shape &hs = h.shape(), &ws = w.shape();
  NA_CHECK(ws.rank() == 2 && hs.rank() >= 1 && hs[-1] == ws[1], "gelu_linear", "h ", hs, " and weight ", ws,
           " do not fit: the weight must be (out, in) with in = h's last dim");
  const int64_t in = ws[1], outf = ws[0], rows = hs.numel() / (in ? in : 1);
  if (bias.defined())
    NA_CHECK(bias.shape() == Shape{outf}, "gelu_linear", "bias ", bias.shape(), " must be (", outf,
             ",) for weight ", ws);
  NA_CHECK(chunk_rows >= 0, "gelu_linear", "chunk_rows must be >= 0 (0 = automatic), got ", chunk_rows);
  const RowChunks rc{rows, std::max<int64_t>(1, chunk_rows ? chunk_rows : kChunkFloats / std::max<int64_t>(in, 1))};

  Shape os = hs;
  os[-1] = outf;
  Var out = tape().output(os, {h, w, bias});
  const Tensor scratch = tape().alloc({std::min(rc.size, rows), in});  // reused by the backward
  float* a = scratch.data();
  const float *H = h.value().data(), *W = w.value().data();
  float* y = out.value().data();
  for (int64_t i = 0; i < rc.count(); ++i) {
    const int64_t r0 = rc.begin(i), m = rc.length(i);
    gelu_into(H + r0 * in, m * in, a);
    detail::linear_forward(a, W, bias.defined() ? bias.value().data() : nullptr, m, in, outf,
                           y + r0 * outf);
  }

  record_backward(out, [=] {
    const float* G = out.grad().data();
    const float *H = h.value().data(), *W = w.value().data();
    float* a = scratch.data();
    float beta_w = 0.0f, beta_h = 0.0f;
    float* dw = w.requires_grad() ? w.grad_sink(beta_w).data() : nullptr;
    // Column sums chunk by chunk: rows still summed in order, as add_column_sums does.
    float* db = bias.defined() && bias.requires_grad() ? bias.grad_acc().data() : nullptr;
    float* dh = h.requires_grad() ? h.grad_sink(beta_h).data() : nullptr;  // chunks write disjoint rows
    // gelu'(h) of a chunk goes where that chunk of a fresh dh will be, else into more scratch.
    float* slope_scratch = dh && beta_h != 0.0f ? tape().scratch<float>(scratch.numel()) : nullptr;
    for (int64_t i = 0; i < rc.count(); ++i) {
      const int64_t r0 = rc.begin(i), m = rc.length(i);
      const float *gc = G + r0 * outf, *hc = H + r0 * in;
      float* dc = dh ? dh + r0 * in : nullptr;
      float* s = slope_scratch ? slope_scratch : dc;
      if (s)  // one pass for gelu(h) and gelu'(h): they share the normal CDF, the costly part
        parallel_for(m * in, detail::kElemGrain, [&](int64_t b, int64_t e) {
          for (int64_t j = b; j < e; ++j) gelu_value_slope(hc[j], a[j], s[j]);
        });
      else
        gelu_into(hc, m * in, a);
      // dW (+)= dY^T gelu(h), summed over chunks in order; db += column sums of dY
      detail::linear_param_grads(gc, a, m, in, outf, beta_w, dw, db);
      beta_w = 1.0f;
      if (!dh) continue;
      // dh (+)= (dY W) * gelu'(h), the product computed into a (gelu(h) is no longer needed)
      gemm(false, false, m, in, outf, 1.0f, gc, outf, W, in, 0.0f, a, in);
      parallel_for(m * in, detail::kElemGrain, [&](int64_t b, int64_t e) {
        if (s == dc)
          for (int64_t j = b; j < e; ++j) dc[j] = a[j] * dc[j];
        else
          for (int64_t j = b; j < e; ++j) dc[j] += a[j] * s[j];
      });
    }
  });
  return out;
}

}  // namespace na
