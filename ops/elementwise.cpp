// Broadcasting binary ops: add, sub, mul, div (NumPy rules), and scalar scale / add.
#include <cstring>

#include "nanoattn/ops.h"
#include "op_util.h"

namespace na {

Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  int rank = std::max(a.rank(), b.rank());
  Shape out;
  for (int i = 0; i < rank; ++i) {
    int ia = i - (rank - a.rank()), ib = i - (rank - b.rank());
    int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    NA_CHECK(da == db || da == 1 || db == 1, op, "shapes ", a, " and ", b,
             " do not broadcast (dim ", i, ": ", da, " vs ", db, ")");
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

namespace {

// Index arithmetic of one broadcast: for each out element, where it reads in a and in b.
struct Broadcast {
  Shape out;
  int64_t stride_a[kMaxDims]{}, stride_b[kMaxDims]{};  // 0 along broadcast dims

  Broadcast(const Shape& o, const Shape& a, const Shape& b) : out(o) {
    set_strides(a, stride_a);
    set_strides(b, stride_b);
  }
  void set_strides(const Shape& s, int64_t* stride) {
    int64_t st = 1;
    for (int i = out.rank() - 1, j = s.rank() - 1; i >= 0; --i, --j) {
      int64_t d = j >= 0 ? s[j] : 1;
      stride[i] = d == 1 ? 0 : st;
      st *= d;
    }
  }
  // Offsets in a and b of the first element of out row `row` (rows run over all but the last dim).
  void row_offsets(int64_t row, int64_t& oa, int64_t& ob) const {
    oa = ob = 0;
    for (int i = out.rank() - 2; i >= 0; --i) {
      int64_t idx = row % out[i];
      row /= out[i];
      oa += idx * stride_a[i];
      ob += idx * stride_b[i];
    }
  }
};

// dst[i] (+)= f(a[ia], b[ib], g[i]) for every out element i (g may be null: then 0).
template <class F>
void broadcast_map(const Broadcast& bc, const float* a, const float* b, const float* g, float* dst,
                   F f, bool add = false) {
  int64_t inner = bc.out.rank() ? bc.out[-1] : 1;
  int64_t rows = inner ? bc.out.numel() / inner : 0;
  int64_t sa = bc.out.rank() ? bc.stride_a[bc.out.rank() - 1] : 0;
  int64_t sb = bc.out.rank() ? bc.stride_b[bc.out.rank() - 1] : 0;
  parallel_for(rows, grain_for(inner, detail::kElemGrain), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t oa, ob;
      bc.row_offsets(r, oa, ob);
      const float* ar = a + oa;
      const float* br = b + ob;
      const float* gr = g ? g + r * inner : nullptr;
      float* d = dst + r * inner;
      if (add)
        for (int64_t j = 0; j < inner; ++j) d[j] += f(ar[j * sa], br[j * sb], gr ? gr[j] : 0.0f);
      else
        for (int64_t j = 0; j < inner; ++j) d[j] = f(ar[j * sa], br[j * sb], gr ? gr[j] : 0.0f);
    }
  });
}

// grad(target) += src summed over the dims where target was broadcast. Each target element
// sums its contributions in a fixed order: deterministic for any thread count.
void reduce_into(const Var& target, const Tensor& src) {
  if (!target.requires_grad()) return;
  const Shape& ts = target.shape();
  const Shape& os = src.shape();
  if (ts.numel() == os.numel()) {
    detail::accumulate(target, src);
    return;
  }
  Broadcast bc(os, ts, ts);  // stride_a: target strides in out-index space
  const Tensor& dst = target.grad_acc();
  // Split out dims into kept ones (indexed by the target element) and reduced ones.
  Shape kept, reduced;
  int64_t kept_out_stride[kMaxDims], red_out_stride[kMaxDims];
  int64_t st = 1;
  int nk = 0, nr = 0;
  int64_t out_stride[kMaxDims];
  for (int i = os.rank() - 1; i >= 0; --i) out_stride[i] = st, st *= os[i];
  for (int i = 0; i < os.rank(); ++i) {
    if (bc.stride_a[i] != 0 || os[i] == 1) kept.push_back(os[i]), kept_out_stride[nk++] = out_stride[i];
    else reduced.push_back(os[i]), red_out_stride[nr++] = out_stride[i];
  }
  int64_t n_red = reduced.numel();
  // Offsets (in src) of every reduced combination, in the tape's arena.
  int64_t* red_off = tape().scratch<int64_t>(n_red);
  for (int64_t r = 0; r < n_red; ++r) {
    int64_t rem = r, off = 0;
    for (int i = nr - 1; i >= 0; --i) off += (rem % reduced[i]) * red_out_stride[i], rem /= reduced[i];
    red_off[r] = off;
  }
  float* d = dst.data();
  const float* s = src.data();
  int64_t n_target = ts.numel();
  parallel_for(n_target, grain_for(n_red, detail::kElemGrain), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t rem = t, base = 0;
      for (int i = nk - 1; i >= 0; --i) base += (rem % kept[i]) * kept_out_stride[i], rem /= kept[i];
      float acc = 0.0f;
      for (int64_t r = 0; r < n_red; ++r) acc += s[base + red_off[r]];
      d[t] += acc;
    }
  });
}

// Shared body of the four binary ops: forward f(a, b); backward da = fa(a, b, g), db = fb(a, b, g).
template <class F, class FA, class FB>
Var binary(const char* op, const Var& a, const Var& b, F f, FA fa, FB fb) {
  NA_PROFILE_OP(op);
  detail::check_defined(op, a, "a");
  detail::check_defined(op, b, "b");
  Shape os = broadcast_shape(op, a.shape(), b.shape());
  Var out = tape().output(os, {a, b});
  Broadcast bc(os, a.shape(), b.shape());
  broadcast_map(bc, a.value().data(), b.value().data(), nullptr, out.value().data(),
                [f](float x, float y, float) { return f(x, y); });
  record_backward(out, [=] {
    const float* g = out.grad().data();
    for (int side = 0; side < 2; ++side) {
      const Var& v = side == 0 ? a : b;
      if (!v.requires_grad()) continue;
      auto map = [&](float* dst, bool add) {
        if (side == 0) broadcast_map(bc, a.value().data(), b.value().data(), g, dst, fa, add);
        else broadcast_map(bc, a.value().data(), b.value().data(), g, dst, fb, add);
      };
      if (v.numel() == out.numel()) {  // not broadcast: straight into the gradient, no temporary
        float beta;
        float* dst = v.grad_sink(beta).data();
        map(dst, beta != 0.0f);
        continue;
      }
      Tensor tmp = tape().alloc(os);
      map(tmp.data(), false);
      reduce_into(v, tmp);
    }
  });
  return out;
}

}  // namespace

Var add(const Var& a, const Var& b) {
  return binary(
      "add", a, b, [](float x, float y) { return x + y; },
      [](float, float, float g) { return g; }, [](float, float, float g) { return g; });
}

Var sub(const Var& a, const Var& b) {
  return binary(
      "sub", a, b, [](float x, float y) { return x - y; },
      [](float, float, float g) { return g; }, [](float, float, float g) { return -g; });
}

Var mul(const Var& a, const Var& b) {
  return binary(
      "mul", a, b, [](float x, float y) { return x * y; },
      [](float, float y, float g) { return g * y; }, [](float x, float, float g) { return g * x; });
}

Var div(const Var& a, const Var& b) {
  return binary(
      "div", a, b, [](float x, float y) { return x / y; },
      [](float, float y, float g) { return g / y; },
      [](float x, float y, float g) { return -g * x / (y * y); });
}

namespace {
// out = x * s + t; backward dx += g * s.
Var affine(const char* op, const Var& x, float s, float t) {
  NA_PROFILE_OP(op);
  detail::check_defined(op, x, "x");
  Var out = tape().output(x.shape(), {x});
  const float* xp = x.value().data();
  float* o = out.value().data();
  parallel_for(x.numel(), detail::kElemGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) o[i] = xp[i] * s + t;
  });
  record_backward(out, [=] {
    const Tensor& dx = x.grad_acc();
    const float* g = out.grad().data();
    float* d = dx.data();
    parallel_for(dx.numel(), detail::kElemGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) d[i] += g[i] * s;
    });
  });
  return out;
}
}  // namespace

Var scale(const Var& x, float s) { return affine("scale", x, s, 0.0f); }
Var add_scalar(const Var& x, float s) { return affine("add_scalar", x, 1.0f, s); }

}  // namespace na
