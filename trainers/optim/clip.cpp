#include "optim/clip.h"

#include <cmath>

#include "nanoattn/error.h"
#include "nanoattn/parallel.h"

namespace na {

namespace {
constexpr int64_t kGrain = 1 << 14;  // fixed: the reduction tree must not depend on threads
}

double grad_norm(const std::vector<Parameter*>& params) {
  double total = 0.0;
  for (const Parameter* p : params) {
    const float* g = p->grad().data();
    total += parallel_sum(p->grad().numel(), kGrain, [g](int64_t begin, int64_t end) {
      double s = 0.0;
      for (int64_t j = begin; j < end; ++j) s += static_cast<double>(g[j]) * g[j];
      return s;
    });
  }
  return std::sqrt(total);
}

double clip_grad_norm(const std::vector<Parameter*>& params, double max_norm) {
  NA_CHECK(max_norm > 0.0, "clip_grad_norm", "max_norm ", max_norm, " must be positive");
  const double norm = grad_norm(params);
  if (clips(norm, max_norm)) {
    const double coef = max_norm / (norm + 1e-6);
    const float c = static_cast<float>(coef);
    for (const Parameter* p : params) {
      float* g = p->grad().data();
      parallel_for(p->grad().numel(), kGrain, [g, c](int64_t begin, int64_t end) {
        for (int64_t j = begin; j < end; ++j) g[j] *= c;
      });
    }
  }
  return norm;
}

}  // namespace na
