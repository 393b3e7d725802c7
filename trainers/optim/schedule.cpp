#include "optim/schedule.h"

#include <cmath>
#include <numbers>

#include "nanoattn/error.h"

namespace na {

ConstantSchedule::ConstantSchedule(double lr) : lr_(lr) {
  NA_CHECK(lr >= 0.0, "constant schedule", "lr ", lr, " is negative");
}

double ConstantSchedule::lr(int64_t) const { return lr_; }

WarmupCosine::WarmupCosine(double max_lr, int64_t warmup, int64_t total, double min_ratio)
    : max_lr_(max_lr), min_lr_(min_ratio * max_lr), warmup_(warmup), total_(total) {
  const char* ctx = "warmup-cosine schedule";
  NA_CHECK(max_lr >= 0.0, ctx, "max_lr ", max_lr, " is negative");
  NA_CHECK(warmup >= 0, ctx, "warmup ", warmup, " is negative");
  NA_CHECK(total >= warmup, ctx, "total steps ", total, " is less than warmup ", warmup);
  NA_CHECK(min_ratio >= 0.0 && min_ratio <= 1.0, ctx, "min_ratio ", min_ratio, " is not in [0, 1]");
}

double WarmupCosine::lr(int64_t step) const {
  NA_CHECK(step >= 0, "warmup-cosine schedule", "step ", step, " is negative");
  if (step < warmup_) return max_lr_ * static_cast<double>(step) / static_cast<double>(warmup_);
  if (step >= total_) return min_lr_;
  const double progress = static_cast<double>(step - warmup_) / static_cast<double>(total_ - warmup_);
  return min_lr_ + (max_lr_ - min_lr_) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace na
