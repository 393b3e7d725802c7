// embedding: a row lookup in a (V, C) table. The backward adds each position's gradient into
// its id's table row. Repeated ids would race if positions were split over tasks, so it runs in
// parallel over chunks of columns instead: each task owns its columns of every table row and
// visits the positions in order (deterministic for any thread count, no atomics).
#include <algorithm>
#include <string>

#include "nanoattn/ops.h"
#include "op_util.h"

namespace na {

namespace {

constexpr const char* kOp = "embedding";

// The multi-index of flat position p in `shape`, e.g. "(1, 2)", for error messages.
std::string index_str(const Shape& shape, int64_t p) {
  std::string s;
  for (int i = shape.rank() - 1; i >= 0; --i) {
    s = std::to_string(p % shape[i]) + (s.empty() ? "" : ", ") + s;
    p /= shape[i];
  }
  return "(" + s + ")";
}

}  // namespace

// table: (V, C)  ids: numel(ids_shape) ids in [0, V)  -> ids_shape + (C,)
Var embedding(const Var& table, std::span<const int32_t> ids, const Shape& ids_shape) {
  NA_PROFILE_OP("embedding");
  detail::check_defined(kOp, table, "table");
  const Shape& ts = table.shape();
  NA_CHECK(ts.rank() == 2, kOp, "table must be (V, C), got ", ts);
  NA_CHECK(ids_shape.rank() < kMaxDims, kOp, "ids_shape ", ids_shape, " has ", ids_shape.rank(),
           " dims; the output adds one and at most ", kMaxDims, " are supported");
  const int64_t V = ts[0], C = ts[1], N = ids_shape.numel();
  NA_CHECK(static_cast<int64_t>(ids.size()) == N, kOp, "got ", ids.size(), " ids for ids_shape ",
           ids_shape, ", which has ", N, " positions");

  // Checked copy: the backward needs the ids after the caller's span may be gone.
  int32_t* id = tape().scratch<int32_t>(N);
  for (int64_t p = 0; p < N; ++p) {
    id[p] = ids[p];
    NA_CHECK(id[p] >= 0 && id[p] < V, kOp, "id ", id[p], " at position ", p, " (index ",
             index_str(ids_shape, p), " of ids_shape ", ids_shape, ") is out of range [0, ", V,
             ") for table ", ts);
  }

  Shape os = ids_shape;
  os.push_back(C);
  Var out = tape().output(os, {table});
  const float* tp = table.value().data();
  float* o = out.value().data();
  parallel_for(N, grain_for(C), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) std::copy(tp + id[p] * C, tp + (id[p] + 1) * C, o + p * C);
  });

  record_backward(out, [=] {
    if (!table.requires_grad()) return;
    const float* g = out.grad().data();
    float* dt = table.grad_acc().data();
    // Columns per task: enough work per task, and a multiple of 16 floats (one cache line) so
    // neighbouring tasks rarely write the same line.
    int64_t cols = (std::max<int64_t>(16, grain_for(N)) + 15) / 16 * 16;
    parallel_for(C, cols, [&](int64_t c0, int64_t c1) {
      for (int64_t p = 0; p < N; ++p) {
        const float* gp = g + p * C;
        float* dr = dt + id[p] * C;
        for (int64_t c = c0; c < c1; ++c) dr[c] += gp[c];
      }
    });
  });
  return out;
}

}  // namespace na
