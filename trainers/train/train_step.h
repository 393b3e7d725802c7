// One optimizer update, shared by the training loop and `nanoattn bench train`.
#pragma once
#include <cmath>
#include <memory>
#include <vector>

#include "data/batcher.h"
#include "experiment/experiment.h"
#include "nanoattn/ops.h"
#include "optim/optimizer.h"

namespace na {

class Model;

// AdamW or SGD as train.optimizer says.
std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& t, std::vector<Parameter*> params);

struct StepResult {
  double loss = 0;       // mean training loss (nats) of the batch: cross-entropy (label smoothing
                         // included), or with a teacher the distillation loss
  double ce = NAN;       // with a teacher: the plain cross-entropy part
  double grad_norm = 0;  // before clipping
};

// Forward, cross-entropy (or, given the teacher's rows for the batch, distill_loss with
// t.distill's alpha and temperature), backward, clipping and the update at learning rate `lr`;
// the tape is reset afterwards. A non-finite loss is returned without touching the parameters.
StepResult train_step(const Model& model, const std::vector<Parameter*>& params, Optimizer& optimizer,
                      const TrainConfig& t, const Batch& batch, uint64_t dropout_key, double lr,
                      const TeacherRows* teacher = nullptr);

}  // namespace na
