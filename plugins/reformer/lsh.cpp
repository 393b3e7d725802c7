#include "lsh.h"

#include <algorithm>

#include "nanoattn/blas.h"
#include "nanoattn/parallel.h"
#include "nanoattn/rng.h"
#include "nanoattn/tape.h"
#include "slots.h"

namespace na::lsh {

namespace {
constexpr int64_t kRows = 64;   // rows per rotation product
constexpr int64_t kSlots = 16;  // rotation blocks alive at once
}

Tensor draw_rotations(int64_t heads, int64_t n_hashes, int64_t dim, int64_t n_buckets, uint64_t key) {
  Tensor r = Tensor::empty({heads, dim, n_hashes * (n_buckets / 2)});
  fill_normal(r, key, 0.0f, 1.0f);
  return r;
}

void buckets(const Tensor& q, const Tensor& rotations, int64_t n_hashes, int64_t n_buckets,
             int32_t* out) {
  const int64_t B = q.dim(0), H = q.dim(1), T = q.dim(2), D = q.dim(3);
  const int64_t half = n_buckets / 2, cols = n_hashes * half;
  NA_CHECK(rotations.shape() == Shape({H, D, cols}), "lsh buckets", "rotations ",
           rotations.shape(), " must be (H, D, R * n_buckets / 2) = (", H, ", ", D, ", ", cols,
           ") for q ", q.shape());
  const int64_t blocks = (T + kRows - 1) / kRows;
  // A kRows x cols block of rotated vectors per scratch slot, on the tape.
  const sparse::Slots slots(B * H * blocks, kSlots);
  float* scratch = tape().scratch<float>(slots.count * kRows * cols);
  slots.run([&](int64_t slot, int64_t item) {
    const int64_t task = item / blocks, h = task % H, t0 = (item % blocks) * kRows;
    const int64_t nr = std::min(kRows, T - t0);
    float* rot = scratch + slot * kRows * cols;
    gemm_serial(false, false, nr, cols, D, 1.0f, q.data() + (task * T + t0) * D, D,
                rotations.data() + h * D * cols, cols, 0.0f, rot, cols);
    for (int64_t i = 0; i < nr; ++i)
      for (int64_t r = 0; r < n_hashes; ++r) {
        const float* x = rot + i * cols + r * half;
        int32_t best = 0;
        float top = x[0];
        for (int64_t c = 1; c < half; ++c)
          if (x[c] > top) top = x[c], best = static_cast<int32_t>(c);
        for (int64_t c = 0; c < half; ++c)
          if (-x[c] > top) top = -x[c], best = static_cast<int32_t>(half + c);
        out[(task * n_hashes + r) * T + t0 + i] = best;
      }
  });
}

SparsePattern pattern(const int32_t* bk, int64_t B, int64_t H, int64_t R, int64_t T,
                      int64_t n_buckets, int64_t chunk, bool causal) {
  const int64_t tasks = B * H, nb = n_buckets, m = chunk;
  // Per task and round: start[nb + 1] (bucket i is members[start[i], start[i + 1])),
  // members[T] (positions, ascending within a bucket), rank[T] (index within its bucket).
  const int64_t per_round = nb + 1 + 2 * T;
  int32_t* work = tape().scratch<int32_t>(std::max<int64_t>(1, tasks * R * per_round));
  int64_t* off = tape().scratch<int64_t>(tasks * (T + 1));
  int64_t* total = tape().scratch<int64_t>(tasks);
  int64_t* longest = tape().scratch<int64_t>(tasks);

  // Round r's list for query t: members [lo, hi] of t's bucket.
  auto range = [=](const int32_t* w, int32_t bucket, int64_t t, int64_t& lo, int64_t& hi) {
    const int32_t* start = w;
    const int64_t rank = w[nb + 1 + T + t], c = rank / m;
    const int64_t size = start[bucket + 1] - start[bucket];
    lo = std::max<int64_t>(0, (c - 1) * m);
    hi = causal ? rank : std::min(size, (c + 1) * m) - 1;
  };

  // Pass 1: each round's buckets (counting sort, stable), ranks, and each row's length.
  parallel_for(tasks, 1, [&](int64_t lo_task, int64_t hi_task) {
    for (int64_t task = lo_task; task < hi_task; ++task) {
      int64_t* o = off + task * (T + 1);
      std::fill(o, o + T + 1, int64_t{0});
      for (int64_t r = 0; r < R; ++r) {
        const int32_t* b = bk + (task * R + r) * T;
        int32_t* w = work + (task * R + r) * per_round;
        int32_t *start = w, *members = w + nb + 1, *rank = members + T;
        std::fill(start, start + nb + 1, 0);
        for (int64_t t = 0; t < T; ++t) ++start[b[t] + 1];
        for (int64_t i = 0; i < nb; ++i) start[i + 1] += start[i];
        for (int64_t t = 0; t < T; ++t) members[start[b[t]]++] = static_cast<int32_t>(t);
        for (int64_t i = nb; i > 0; --i) start[i] = start[i - 1];  // back to the beginnings
        start[0] = 0;
        for (int64_t i = 0; i < nb; ++i)
          for (int32_t j = start[i]; j < start[i + 1]; ++j) rank[members[j]] = j - start[i];
        for (int64_t t = 0; t < T; ++t) {
          int64_t lo, hi;
          range(w, b[t], t, lo, hi);
          o[t + 1] += hi - lo + 1;
        }
      }
      int64_t run = 0, most = 0;
      for (int64_t t = 0; t < T; ++t) {
        most = std::max(most, o[t + 1]);
        run += o[t + 1];
        o[t + 1] = run;
      }
      total[task] = run;
      longest[task] = most;
    }
  });
  int64_t all = 0, most = 0;
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t n = total[task];
    total[task] = all;  // now the task's first entry
    all += n;
    most = std::max(most, longest[task]);
  }
  int32_t* index = tape().scratch<int32_t>(std::max<int64_t>(1, all));

  // Pass 2: absolute offsets, then the lists.
  parallel_for(tasks, 1, [&](int64_t lo_task, int64_t hi_task) {
    for (int64_t task = lo_task; task < hi_task; ++task) {
      int64_t* o = off + task * (T + 1);
      for (int64_t t = 0; t <= T; ++t) o[t] += total[task];
      for (int64_t t = 0; t < T; ++t) {
        int32_t* out = index + o[t];
        for (int64_t r = 0; r < R; ++r) {
          const int32_t* b = bk + (task * R + r) * T;
          const int32_t* w = work + (task * R + r) * per_round;
          const int32_t* members = w + nb + 1 + w[b[t]];
          int64_t lo, hi;
          range(w, b[t], t, lo, hi);
          for (int64_t j = lo; j <= hi; ++j)
            *out++ = members[j] == t ? SparsePattern::fixed_entry(t) : members[j];
        }
      }
    }
  });

  SparsePattern pat;
  pat.layout = SparsePattern::Layout::PerTask;
  pat.count = tasks;
  pat.rows = T;
  pat.keys = T;
  pat.offsets = off;
  pat.index = index;
  pat.max_row = most;
  return pat;
}

}  // namespace na::lsh
