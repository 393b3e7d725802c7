// Causal grouped 1-D convolution over time, forward and backward.
//
// With the weight rearranged as wt (K, Cout, Cin/G), tap k of group g is the plain matrix
// W_kg = wt[k, g's output channels, :] of shape (Cout/G, Cin/G), and
//   y[b, t, g's outputs] = bias + sum_k x[b, t - (K-1) + k, g's inputs] W_kg^T
// where rows with t - (K-1) + k < 0 read the zero padding and are skipped. Full and grouped
// convs run these as single-threaded sgemms inside tasks; depthwise convs (one channel per
// group, every W_kg 1x1) use an elementwise loop over channels instead.
//
// Every output element is owned by one task and summed in a fixed order (no atomics), and the
// tasks depend only on the shapes, so results are bitwise identical for any thread count: the
// forward and dx run over (batch, time-block) tasks, dw and db over output-channel blocks.
#include <algorithm>

#include "nanoattn/blas.h"
#include "nanoattn/ops.h"
#include "op_util.h"

namespace na {

namespace {

struct ConvDims {
  int64_t B, T, Cin, Cout, K, G, cin_g, cout_g;  // cin_g = Cin / G, cout_g = Cout / G
  bool depthwise() const { return cin_g == 1 && cout_g == 1; }
  // Tap k at output time t reads input time t - shift(k).
  int64_t shift(int64_t k) const { return K - 1 - k; }
  // The offset of tap k, group g in wt (K, Cout, Cin/G): W_kg, row-major (cout_g, cin_g).
  int64_t w_offset(int64_t k, int64_t g) const { return (k * Cout + g * cout_g) * cin_g; }
};

// body(b, t0, t1) for fixed blocks of time steps of each batch, in parallel. Blocks have at
// least 64 rows (long sgemms) and about 64k multiply-adds.
template <class F>
void for_time_blocks(const ConvDims& d, F body) {
  Chunks blocks(d.T, std::max<int64_t>(64, grain_for(d.Cout * d.cin_g * d.K, 1 << 16)));
  parallel_for(d.B * blocks.count, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      body(i / blocks.count, blocks.begin(i % blocks.count), blocks.end(i % blocks.count));
  });
}

// x: (B, T, Cin)  wt: (K, Cout, Cin/G)  bias: (Cout,) or null  -> y: (B, T, Cout)
void conv_forward(const ConvDims& d, const float* x, const float* wt, const float* bias,
                  float* y) {
  for_time_blocks(d, [&](int64_t b, int64_t t0, int64_t t1) {
    const float* xb = x + b * d.T * d.Cin;
    float* yb = y + b * d.T * d.Cout;
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t o = 0; o < d.Cout; ++o) yb[t * d.Cout + o] = bias ? bias[o] : 0.0f;
    for (int64_t k = 0; k < d.K; ++k) {
      int64_t s = d.shift(k), lo = std::max(t0, s);  // rows before s read the padding
      if (lo >= t1) continue;
      if (d.depthwise()) {
        const float* wk = wt + k * d.Cout;
        for (int64_t t = lo; t < t1; ++t) {
          const float* xr = xb + (t - s) * d.Cin;
          float* yr = yb + t * d.Cout;
          for (int64_t c = 0; c < d.Cout; ++c) yr[c] += wk[c] * xr[c];
        }
      } else {
        for (int64_t g = 0; g < d.G; ++g)  // y[lo:t1, g outs] += x[lo-s:t1-s, g ins] W_kg^T
          gemm_serial(false, true, t1 - lo, d.cout_g, d.cin_g, 1.0f,
                      xb + (lo - s) * d.Cin + g * d.cin_g, d.Cin, wt + d.w_offset(k, g), d.cin_g,
                      1.0f, yb + lo * d.Cout + g * d.cout_g, d.Cout);
      }
    }
  });
}

// gy: (B, T, Cout)  wt: (K, Cout, Cin/G)  -> dx: (B, T, Cin) +=. Input row t gets tap k's
// contribution from output row t + shift(k), if that is inside the sequence.
void conv_backward_x(const ConvDims& d, const float* gy, const float* wt, float* dx) {
  for_time_blocks(d, [&](int64_t b, int64_t t0, int64_t t1) {
    const float* gb = gy + b * d.T * d.Cout;
    float* dxb = dx + b * d.T * d.Cin;
    for (int64_t k = 0; k < d.K; ++k) {
      int64_t s = d.shift(k), hi = std::min(t1, d.T - s);
      if (t0 >= hi) continue;
      if (d.depthwise()) {
        const float* wk = wt + k * d.Cout;
        for (int64_t t = t0; t < hi; ++t) {
          const float* gr = gb + (t + s) * d.Cout;
          float* dxr = dxb + t * d.Cin;
          for (int64_t c = 0; c < d.Cin; ++c) dxr[c] += gr[c] * wk[c];
        }
      } else {
        for (int64_t g = 0; g < d.G; ++g)  // dx[t0:hi, g ins] += gy[t0+s:hi+s, g outs] W_kg
          gemm_serial(false, false, hi - t0, d.cin_g, d.cout_g, 1.0f,
                      gb + (t0 + s) * d.Cout + g * d.cout_g, d.Cout, wt + d.w_offset(k, g),
                      d.cin_g, 1.0f, dxb + t0 * d.Cin + g * d.cin_g, d.Cin);
      }
    }
  });
}

// gy: (B, T, Cout)  x: (B, T, Cin)  dwt: (K, Cout, Cin/G) zeroed scratch  -> dw: (Cout, Cin/G, K)
// +=, db: (Cout,) += (either may be null). Each task owns a block of output channels inside
// one group (any channels when depthwise) and sums over batches and times in order.
void conv_backward_w(const ConvDims& d, const float* gy, const float* x, float* dwt, float* dw,
                     float* db) {
  Chunks blocks(d.depthwise() ? d.Cout : d.cout_g, 64);
  int64_t groups = d.depthwise() ? 1 : d.G;  // depthwise blocks span groups
  parallel_for(groups * blocks.count, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      int64_t g = i / blocks.count;
      int64_t o0 = g * d.cout_g + blocks.begin(i % blocks.count);
      int64_t o1 = g * d.cout_g + blocks.end(i % blocks.count);
      for (int64_t b = 0; b < d.B; ++b) {
        const float* gb = gy + b * d.T * d.Cout;
        const float* xb = x + b * d.T * d.Cin;
        if (db)
          for (int64_t t = 0; t < d.T; ++t)
            for (int64_t o = o0; o < o1; ++o) db[o] += gb[t * d.Cout + o];
        if (!dw) continue;
        for (int64_t k = 0; k < d.K; ++k) {
          int64_t s = d.shift(k);
          if (s >= d.T) continue;
          if (d.depthwise()) {
            float* dwk = dwt + k * d.Cout;
            for (int64_t t = s; t < d.T; ++t) {
              const float *gr = gb + t * d.Cout, *xr = xb + (t - s) * d.Cin;
              for (int64_t o = o0; o < o1; ++o) dwk[o] += gr[o] * xr[o];
            }
          } else {  // W_kg[o0:o1] += gy[s:T, o0:o1]^T x[0:T-s, g ins]
            gemm_serial(true, false, o1 - o0, d.cin_g, d.T - s, 1.0f, gb + s * d.Cout + o0, d.Cout,
                        xb + g * d.cin_g, d.Cin, 1.0f, dwt + (k * d.Cout + o0) * d.cin_g, d.cin_g);
          }
        }
      }
      if (dw)  // back to w's layout
        for (int64_t o = o0; o < o1; ++o)
          for (int64_t c = 0; c < d.cin_g; ++c)
            for (int64_t k = 0; k < d.K; ++k)
              dw[(o * d.cin_g + c) * d.K + k] += dwt[(k * d.Cout + o) * d.cin_g + c];
    }
  });
}

}  // namespace

// x: (B, T, Cin)  w: (Cout, Cin/G, K)  bias: (Cout,) or undefined  -> (B, T, Cout)
Var causal_conv1d(const Var& x, const Var& w, const Var& bias, int groups) {
  NA_PROFILE_OP("causal_conv1d");
  const char* op = "causal_conv1d";
  detail::check_defined(op, x, "x");
  detail::check_defined(op, w, "w");
  const Shape &xs = x.shape(), &ws = w.shape();
  NA_CHECK(xs.rank() == 3, op, "x must be (B, T, Cin), got ", xs);
  NA_CHECK(groups >= 1, op, "groups must be >= 1, got ", groups);
  NA_CHECK(xs[2] % groups == 0, op, "Cin = ", xs[2], " of x ", xs,
           " is not divisible by groups = ", groups);
  NA_CHECK(ws.rank() == 3 && ws[1] == xs[2] / groups && ws[2] >= 1, op, "weight ", ws,
           " must be (Cout, Cin/G, K) = (Cout, ", xs[2] / groups, ", K >= 1) for x ", xs,
           " and groups = ", groups);
  NA_CHECK(ws[0] % groups == 0, op, "Cout = ", ws[0], " of weight ", ws,
           " is not divisible by groups = ", groups);
  if (bias.defined())
    NA_CHECK(bias.shape() == Shape{ws[0]}, op, "bias ", bias.shape(), " must be (", ws[0],
             ",) for weight ", ws);
  ConvDims d{xs[0], xs[1], xs[2], ws[0], ws[2], groups, ws[1], ws[0] / groups};

  Var out = bias.defined() ? tape().output({d.B, d.T, d.Cout}, {x, w, bias})
                           : tape().output({d.B, d.T, d.Cout}, {x, w});
  // w (Cout, Cin/G, K) -> wt (K, Cout, Cin/G); small, kept for the backward.
  float* wt = tape().alloc({d.K, d.Cout, d.cin_g}).data();
  const float* wp = w.value().data();
  for (int64_t o = 0; o < d.Cout; ++o)
    for (int64_t c = 0; c < d.cin_g; ++c)
      for (int64_t k = 0; k < d.K; ++k)
        wt[(k * d.Cout + o) * d.cin_g + c] = wp[(o * d.cin_g + c) * d.K + k];
  conv_forward(d, x.value().data(), wt, bias.defined() ? bias.value().data() : nullptr,
               out.value().data());

  record_backward(out, [=] {
    const float* gy = out.grad().data();
    if (x.requires_grad()) conv_backward_x(d, gy, wt, x.grad_acc().data());
    float* dw = w.requires_grad() ? w.grad_acc().data() : nullptr;
    float* db = bias.defined() && bias.requires_grad() ? bias.grad_acc().data() : nullptr;
    if (dw || db) {
      float* dwt = dw ? tape().zeros({d.K, d.Cout, d.cin_g}).data() : nullptr;
      conv_backward_w(d, gy, x.value().data(), dwt, dw, db);
    }
  });
  return out;
}

}  // namespace na
