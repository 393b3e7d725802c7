// Learning-rate schedules. `step` is the number of optimizer updates already done, counting
// from 0: the first update uses lr(0). This is PyTorch's LambdaLR convention (and HF
// transformers' get_cosine_schedule_with_warmup), so with warmup > 0 the first update has lr 0.
#pragma once
#include <cstdint>

namespace na {

class Schedule {
 public:
  virtual ~Schedule() = default;
  virtual double lr(int64_t step) const = 0;
};

class ConstantSchedule : public Schedule {
 public:
  explicit ConstantSchedule(double lr);
  double lr(int64_t step) const override;

 private:
  double lr_;
};

// step < warmup: max_lr * step / warmup. Then cosine from max_lr (at step == warmup) down to
// min_lr = min_ratio * max_lr (at step == total), and min_lr for every step after.
class WarmupCosine : public Schedule {
 public:
  WarmupCosine(double max_lr, int64_t warmup, int64_t total, double min_ratio = 0.0);
  double lr(int64_t step) const override;

 private:
  double max_lr_, min_lr_;
  int64_t warmup_, total_;
};

}  // namespace na
