#include "dump/top_k.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "nanoattn/error.h"

namespace na {

void top_k_rows(const float* logprobs, int64_t rows, int64_t V, int64_t k, int32_t* ids, float* values) {
  NA_CHECK(k >= 1 && k <= V, "top-k", "k = ", k, " must be in [1, V = ", V, "]");
  std::vector<int32_t> order(static_cast<size_t>(V));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logprobs + r * V;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [row](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    for (int64_t j = 0; j < k; ++j) {
      ids[r * k + j] = order[j];
      values[r * k + j] = row[order[j]];
    }
  }
}

}  // namespace na
