// Shape ops: reshape (a view), permute / transpose, slice, split_heads, concat (materialise),
// masked_fill.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "nanoattn/ops.h"
#include "op_util.h"

namespace na {

namespace {

// "[2, 0, 1]" for error messages.
std::string list_str(const std::vector<int>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// Row-major strides of a shape.
void strides_of(const Shape& s, int64_t* stride) {
  int64_t st = 1;
  for (int i = s.rank() - 1; i >= 0; --i) stride[i] = st, st *= s[i];
}

// dst (+)= src for `outer` blocks of `len` floats at strides dst_stride / src_stride:
// the copy behind slice, concat and their backwards. Split over flat elements so that one
// huge block (outer == 1) and many tiny ones both parallelise.
void copy_blocks(float* dst, int64_t dst_stride, const float* src, int64_t src_stride,
                 int64_t outer, int64_t len, bool add) {
  if (len == 0) return;
  parallel_for(outer * len, detail::kElemGrain, [&](int64_t b, int64_t e) {
    while (b < e) {
      int64_t o = b / len, j = b % len, n = std::min(len - j, e - b);
      float* d = dst + o * dst_stride + j;
      const float* s = src + o * src_stride + j;
      if (add) for (int64_t i = 0; i < n; ++i) d[i] += s[i];
      else std::memcpy(d, s, n * sizeof(float));
      b += n;
    }
  });
}

// Where each element of a permuted tensor reads in its source, with size-1 dims dropped and
// dims that stay adjacent in both layouts merged: (B, T, H, D) -> (B, H, T, D) keeps 4 dims
// with source stride 1 innermost (so rows of D are plain copies); identity becomes one dim.
struct PermutePlan {
  int rank = 0;
  int64_t dims[kMaxDims];    // output extents after merging
  int64_t stride[kMaxDims];  // the source stride of each

  PermutePlan(const Shape& src, const int* perm) {
    int64_t st[kMaxDims];
    strides_of(src, st);
    for (int k = 0; k < src.rank(); ++k) {
      int64_t d = src[perm[k]], s = st[perm[k]];
      if (d == 1) continue;
      if (rank > 0 && stride[rank - 1] == d * s) {  // continues the previous dim in the source
        dims[rank - 1] *= d;
        stride[rank - 1] = s;
      } else {
        dims[rank] = d, stride[rank] = s, ++rank;
      }
    }
    if (rank == 0) dims[0] = 1, stride[0] = 1, rank = 1;
  }
};

// dst (+)= src permuted by `perm` (dst is contiguous in the permuted shape). Parallel over
// output rows (all dims but the innermost merged one).
void permute_kernel(const float* src, const Shape& src_shape, const int* perm, float* dst,
                    bool add) {
  PermutePlan p(src_shape, perm);
  int64_t inner = p.dims[p.rank - 1], is = p.stride[p.rank - 1];
  int64_t rows = inner ? src_shape.numel() / inner : 0;
  parallel_for(rows, grain_for(inner, detail::kElemGrain), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t rem = r, off = 0;
      for (int i = p.rank - 2; i >= 0; --i)
        off += (rem % p.dims[i]) * p.stride[i], rem /= p.dims[i];
      const float* s = src + off;
      float* d = dst + r * inner;
      if (is == 1 && !add) std::memcpy(d, s, inner * sizeof(float));
      else if (add) for (int64_t j = 0; j < inner; ++j) d[j] += s[j * is];
      else for (int64_t j = 0; j < inner; ++j) d[j] = s[j * is];
    }
  });
}

// Normalises a possibly negative axis of x; the error names `op` and x's shape.
int norm_axis(const char* op, int axis, const Shape& x) {
  int a = axis < 0 ? axis + x.rank() : axis;
  NA_CHECK(a >= 0 && a < x.rank(), op, "axis ", axis, " is out of range for x ", x);
  return a;
}

// x: (d0, ..., dn) -> (d_perm[0], ..., d_perm[n]); perm is a valid permutation of x's axes.
Var permute_checked(const Var& x, const int* perm) {
  NA_PROFILE_OP("permute");
  const Shape& xs = x.shape();
  int inv[kMaxDims];
  Shape os;
  for (int k = 0; k < xs.rank(); ++k) os.push_back(xs[perm[k]]), inv[perm[k]] = k;
  Var out = tape().output(os, {x});
  permute_kernel(x.value().data(), xs, perm, out.value().data(), false);
  record_backward(out, [=] {  // dx (+)= g permuted back by the inverse permutation
    float beta;
    float* dx = x.grad_sink(beta).data();
    permute_kernel(out.grad().data(), os, inv, dx, beta != 0.0f);
  });
  return out;
}

// For each element i of x (shape xs), calls f(i, mask value at i) where mask broadcasts to xs
// (NumPy rules, right-aligned). Parallel over rows of xs's last dim.
template <class F>
void for_each_masked(const Shape& xs, const Tensor& mask, F f) {
  int r = xs.rank();
  int64_t mstride[kMaxDims] = {};  // mask strides in x's index space, 0 where broadcast
  int64_t st = 1;
  for (int i = r - 1, j = mask.rank() - 1; i >= 0; --i, --j) {
    int64_t d = j >= 0 ? mask.dim(j) : 1;
    mstride[i] = d == 1 ? 0 : st;
    st *= d;
  }
  int64_t inner = r ? xs[-1] : 1, rows = inner ? xs.numel() / inner : 0;
  int64_t is = r ? mstride[r - 1] : 0;
  const float* m = mask.data();
  parallel_for(rows, grain_for(inner, detail::kElemGrain), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      int64_t rem = row, off = 0;
      for (int i = r - 2; i >= 0; --i) off += (rem % xs[i]) * mstride[i], rem /= xs[i];
      for (int64_t j = 0; j < inner; ++j) f(row * inner + j, m[off + j * is]);
    }
  });
}

}  // namespace

// x: any shape -> `shape` (same numel). The output's value shares x's storage.
Var reshape(const Var& x, Shape shape) {
  detail::check_defined("reshape", x, "x");
  Var out = tape().leaf(x.value().reshape(shape), x.requires_grad() && tape().grad_enabled());
  record_backward(out, [=] { detail::accumulate(x, out.grad().reshape(x.shape())); });
  return out;
}

// x: (d0, ..., dn) -> (d_perm[0], ..., d_perm[n]); negative axes count from the end.
Var permute(const Var& x, const std::vector<int>& perm_in) {
  detail::check_defined("permute", x, "x");
  int r = x.rank();
  int perm[kMaxDims];
  bool seen[kMaxDims] = {};
  bool ok = static_cast<int>(perm_in.size()) == r;
  for (int k = 0; ok && k < r; ++k) {
    int a = perm_in[k] < 0 ? perm_in[k] + r : perm_in[k];
    ok = a >= 0 && a < r && !seen[a];
    if (ok) seen[a] = true, perm[k] = a;
  }
  NA_CHECK(ok, "permute", "perm ", list_str(perm_in), " is not a permutation of the ", r,
           " axes of x ", x.shape());
  return permute_checked(x, perm);
}

// x: (..., a, ..., b, ...) -> (..., b, ..., a, ...).
Var transpose(const Var& x, int axis_a, int axis_b) {
  detail::check_defined("transpose", x, "x");
  int a = norm_axis("transpose", axis_a, x.shape()), b = norm_axis("transpose", axis_b, x.shape());
  int perm[kMaxDims];
  for (int i = 0; i < x.rank(); ++i) perm[i] = i;
  std::swap(perm[a], perm[b]);
  return permute_checked(x, perm);
}

// x: (..., n, ...) -> (..., end - start, ...) along `axis`.
Var slice(const Var& x, int axis, int64_t start, int64_t end) {
  NA_PROFILE_OP("slice");
  detail::check_defined("slice", x, "x");
  const Shape& xs = x.shape();
  int a = norm_axis("slice", axis, xs);
  int64_t n = xs[a];
  NA_CHECK(0 <= start && start <= end && end <= n, "slice", "[", start, ", ", end,
           ") is out of range for axis ", axis, " of x ", xs, " (need 0 <= start <= end <= ", n,
           ")");
  Shape os = xs;
  os[a] = end - start;
  // As (outer, n, inner): each outer index owns one block of (end - start) * inner floats.
  int64_t outer = xs.prod(0, a), inner = xs.prod(a + 1, xs.rank()), len = (end - start) * inner;
  Var out = tape().output(os, {x});
  copy_blocks(out.value().data(), len, x.value().data() + start * inner, n * inner, outer, len,
              false);
  record_backward(out, [=] {  // the slice region of dx += g
    copy_blocks(x.grad_acc().data() + start * inner, n * inner, out.grad().data(), len, outer,
                len, true);
  });
  return out;
}

// x: (B, T, n) -> (B, H, T, d): the H heads of width d stored in columns [start, start + H d).
// = permute(reshape(slice(x, -1, start, start + H d), {B, T, H, d}), {0, 2, 1, 3}) in one copy,
// so attention's q, k, v cost one tensor each instead of two (and one pass each way).
Var split_heads(const Var& x, int64_t start, int64_t heads, int64_t head_dim) {
  NA_PROFILE_OP("split_heads");
  detail::check_defined("split_heads", x, "x");
  const Shape& xs = x.shape();
  NA_CHECK(xs.rank() == 3 && heads > 0 && head_dim > 0 && start >= 0 &&
               start + heads * head_dim <= xs[2],
           "split_heads", heads, " heads of ", head_dim, " columns from column ", start,
           " do not fit x ", xs, " (want x (B, T, n) with start + heads * head_dim <= n)");
  const int64_t B = xs[0], T = xs[1], n = xs[2], H = heads, d = head_dim;
  Var out = tape().output({B, H, T, d}, {x});
  const float* src = x.value().data() + start;
  float* dst = out.value().data();
  parallel_for(B * H * T, grain_for(d, detail::kElemGrain), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {  // r = (b H + h) T + t
      const int64_t t = r % T, h = r / T % H, b = r / (T * H);
      std::memcpy(dst + r * d, src + (b * T + t) * n + h * d, d * sizeof(float));
    }
  });
  record_backward(out, [=] {  // dx[b, t, start + h d + j] += g[b, h, t, j]; rows of dx are disjoint
    float* dx = x.grad_acc().data() + start;
    const float* g = out.grad().data();
    parallel_for(B * T, grain_for(H * d, detail::kElemGrain), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {  // r = b T + t
        const int64_t t = r % T, b = r / T;
        for (int64_t h = 0; h < H; ++h) {
          const float* gr = g + ((b * H + h) * T + t) * d;
          float* dr = dx + r * n + h * d;
          for (int64_t j = 0; j < d; ++j) dr[j] += gr[j];
        }
      }
    });
  });
  return out;
}

// xs[i]: (..., n_i, ...) -> (..., sum n_i, ...) along `axis`; all other dims equal.
Var concat(const std::vector<Var>& xs, int axis) {
  NA_PROFILE_OP("concat");
  NA_CHECK(!xs.empty(), "concat", "needs at least one input");
  for (const Var& v : xs) detail::check_defined("concat", v, "xs[i]");
  const Shape& s0 = xs[0].shape();
  int a = norm_axis("concat", axis, s0);
  Shape os = s0;
  os[a] = 0;
  bool any_grad = false;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Shape& si = xs[i].shape();
    bool fits = si.rank() == s0.rank();
    for (int d = 0; fits && d < s0.rank(); ++d) fits = d == a || si[d] == s0[d];
    NA_CHECK(fits, "concat", "input ", i, " has shape ", si, " but input 0 has ", s0,
             ": all dims but axis ", axis, " must match");
    os[a] += si[a];
    any_grad = any_grad || xs[i].requires_grad();
  }
  // As (outer, n_i, inner): input i fills columns [off_i, off_i + n_i) of each outer block.
  int64_t outer = s0.prod(0, a), inner = s0.prod(a + 1, s0.rank()), row = os[a] * inner;
  size_t count = xs.size();
  Var out = tape().output(os, any_grad);
  // The inputs and their offsets live in the arena (the closure must not own a vector).
  Var* in = std::uninitialized_copy(xs.begin(), xs.end(), tape().scratch<Var>(count)) - count;
  int64_t* off = tape().scratch<int64_t>(count);
  for (size_t i = 0; i < count; ++i) off[i] = i ? off[i - 1] + in[i - 1].dim(a) : 0;
  for (size_t i = 0; i < count; ++i) {
    int64_t len = in[i].dim(a) * inner;
    copy_blocks(out.value().data() + off[i] * inner, row, in[i].value().data(), len, outer, len,
                false);
  }
  record_backward(out, [=] {  // each input gets its columns of g
    for (size_t i = 0; i < count; ++i) {
      if (!in[i].requires_grad()) continue;
      float beta;
      float* dx = in[i].grad_sink(beta).data();
      int64_t len = in[i].dim(a) * inner;
      copy_blocks(dx, len, out.grad().data() + off[i] * inner, row, outer, len, beta != 0.0f);
    }
  });
  return out;
}

// x: any shape  mask: broadcastable to x -> x's shape.
Var masked_fill(const Var& x, const Tensor& mask, float value) {
  NA_PROFILE_OP("masked_fill");
  detail::check_defined("masked_fill", x, "x");
  NA_CHECK(mask.defined(), "masked_fill", "mask is undefined");
  NA_CHECK(mask.rank() <= x.rank() && broadcast_shape("masked_fill", x.shape(), mask.shape()) ==
                                          x.shape(),
           "masked_fill", "mask ", mask.shape(), " does not broadcast to x ", x.shape());
  Var out = tape().output(x.shape(), {x});
  const float* xp = x.value().data();
  float* o = out.value().data();
  for_each_masked(x.shape(), mask, [=](int64_t i, float m) { o[i] = m != 0.0f ? value : xp[i]; });
  record_backward(out, [=] {  // masked elements were constants: no gradient
    const float* g = out.grad().data();
    float* dx = x.grad_acc().data();
    for_each_masked(x.shape(), mask, [=](int64_t i, float m) { dx[i] += m != 0.0f ? 0.0f : g[i]; });
  });
  return out;
}

}  // namespace na
