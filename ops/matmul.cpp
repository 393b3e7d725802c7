// matmul (batched, with transposes) and linear (x W^T + b, fused bias).
#include "nanoattn/blas.h"
#include "nanoattn/ops.h"
#include "op_util.h"

namespace na {

namespace {

// The matrix dims of a stored (..., r, c) operand.
struct Mat {
  int64_t batch, rows, cols;
  explicit Mat(const Shape& s) : batch(s.prod(0, s.rank() - 2)), rows(s[-2]), cols(s[-1]) {}
};

// dst (+)= sum over batches of op(A_i) op(B_i); strides 0 reuse one matrix for every batch.
// With beta 0 the first product overwrites.
void gemm_into(int64_t count, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A,
               int64_t lda, int64_t sa, const float* B, int64_t ldb, int64_t sb, float beta,
               float* C, int64_t sc) {
  if (sc != 0) {
    gemm_batched(count, ta, tb, M, N, K, 1.0f, A, lda, sa, B, ldb, sb, beta, C, N, sc);
    return;
  }
  for (int64_t i = 0; i < count; ++i, beta = 1.0f)  // summing into one shared matrix, in order
    gemm(ta, tb, M, N, K, 1.0f, A + i * sa, lda, B + i * sb, ldb, beta, C, N);
}

}  // namespace

Var matmul(const Var& a, const Var& b, bool ta, bool tb) {
  NA_PROFILE_OP("matmul");
  detail::check_defined("matmul", a, "a");
  detail::check_defined("matmul", b, "b");
  const Shape &as = a.shape(), &bs = b.shape();
  NA_CHECK(as.rank() >= 2 && bs.rank() >= 2, "matmul", "both operands need >= 2 dims, got ", as,
           " and ", bs);
  Mat am(as), bm(bs);
  int64_t M = ta ? am.cols : am.rows, K = ta ? am.rows : am.cols;
  int64_t Kb = tb ? bm.cols : bm.rows, N = tb ? bm.rows : bm.cols;
  bool shared_b = bs.rank() == 2;
  NA_CHECK(K == Kb, "matmul", "inner dims differ: a ", as, (ta ? " (transposed)" : ""), " and b ",
           bs, (tb ? " (transposed)" : ""), " give K = ", K, " vs ", Kb);
  NA_CHECK(shared_b || (as.rank() == bs.rank() && as.prod(0, as.rank() - 2) == bm.batch &&
                        Shape::from_range(as.begin(), as.end() - 2) ==
                            Shape::from_range(bs.begin(), bs.end() - 2)),
           "matmul", "batch dims of a ", as, " and b ", bs,
           " must be equal (or b must be 2-D, shared by every batch)");
  Shape os = as;
  os[-2] = M;
  os[-1] = N;
  Var out = tape().output(os, {a, b});
  int64_t batch = am.batch;
  int64_t sa = am.rows * am.cols, sb = shared_b ? 0 : bm.rows * bm.cols, sc = M * N;
  const float *A = a.value().data(), *B = b.value().data();
  if (shared_b && !ta)  // one big product: fold the batch into the rows
    gemm(false, tb, batch * M, N, K, 1.0f, A, am.cols, B, bm.cols, 0.0f, out.value().data(), N);
  else
    gemm_batched(batch, ta, tb, M, N, K, 1.0f, A, am.cols, sa, B, bm.cols, sb, 0.0f,
                 out.value().data(), N, sc);

  record_backward(out, [=] {
    const float* G = out.grad().data();
    const float *A = a.value().data(), *B = b.value().data();
    if (a.requires_grad()) {
      float beta;
      float* dA = a.grad_sink(beta).data();
      if (!ta && shared_b)  // dA = dC op(B)^T, batch folded into rows
        gemm(false, !tb, batch * M, K, N, 1.0f, G, N, B, bm.cols, beta, dA, K);
      else if (!ta)
        gemm_batched(batch, false, !tb, M, K, N, 1.0f, G, N, sc, B, bm.cols, sb, beta, dA, K, sa);
      else  // A stored (K, M): dA = op(B) dC^T
        gemm_batched(batch, tb, true, K, M, N, 1.0f, B, bm.cols, sb, G, N, sc, beta, dA, M, sa);
    }
    if (b.requires_grad()) {
      float beta;
      float* dB = b.grad_sink(beta).data();
      if (shared_b && !ta) {  // sum over the batch folded into the reduction dim
        if (!tb) gemm(true, false, K, N, batch * M, 1.0f, A, am.cols, G, N, beta, dB, N);
        else gemm(true, false, N, K, batch * M, 1.0f, G, N, A, am.cols, beta, dB, K);
      } else if (!tb) {  // dB = op(A)^T dC
        gemm_into(batch, !ta, false, K, N, M, A, am.cols, sa, G, N, sc, beta, dB, sb);
      } else {  // B stored (N, K): dB = dC^T op(A)
        gemm_into(batch, true, ta, N, K, M, G, N, sc, A, am.cols, sa, beta, dB, sb);
      }
    }
  });
  return out;
}

Var linear(const Var& x, const Var& w, const Var& bias) {
  NA_PROFILE_OP("linear");
  detail::check_defined("linear", x, "x");
  detail::check_defined("linear", w, "w");
  const Shape &xs = x.shape(), &ws = w.shape();
  NA_CHECK(ws.rank() == 2 && xs.rank() >= 1 && xs[-1] == ws[1], "linear", "x ", xs,
           " and weight ", ws, " do not fit: the weight must be (out, in) with in = x's last dim");
  int64_t in = ws[1], outf = ws[0], rows = xs.numel() / (in ? in : 1);
  if (bias.defined())
    NA_CHECK(bias.shape() == Shape{outf}, "linear", "bias ", bias.shape(), " must be (", outf,
             ",) for weight ", ws);
  Shape os = xs;
  os[-1] = outf;
  Var out = tape().output(os, {x, w, bias});
  detail::linear_forward(x.value().data(), w.value().data(),
                         bias.defined() ? bias.value().data() : nullptr, rows, in, outf,
                         out.value().data());

  record_backward(out, [=] {
    const float* G = out.grad().data();
    float beta = 0.0f;
    if (x.requires_grad()) {  // dx = dY W
      float* dx = x.grad_sink(beta).data();
      gemm(false, false, rows, in, outf, 1.0f, G, outf, w.value().data(), in, beta, dx, in);
    }
    // dW = dY^T x, db = column sums of dY (fixed order)
    float* dw = w.requires_grad() ? w.grad_sink(beta).data() : nullptr;
    float* db = bias.defined() && bias.requires_grad() ? bias.grad_acc().data() : nullptr;
    detail::linear_param_grads(G, x.value().data(), rows, in, outf, beta, dw, db);
  });
  return out;
}

}  // namespace na
