// One optimizer update, shared by the training loop and `nanoattn bench train`.
#pragma once
#include <cmath>
#include <memory>
#include <string>
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

class Comm;

// Forward, cross-entropy (or, given the teacher's rows, distill_loss with t.distill's alpha and
// temperature), backward, clipping and the update at learning rate `lr`; the tape is reset
// afterwards. A non-finite loss is returned without touching the parameters.
//
// With t.micro_batches K > 1 the batch is K micro-batches of B/K rows, micro-batch k with dropout
// key Rng::mix(dropout_key, k); each gives its own gradient, and the K are summed in order
// 0, 1, ..., K-1 and scaled by 1/K (the gradient of the mean loss; the loss is their mean).
// Given `comm` with N ranks (K % N == 0), rank r computes micro-batches [r K/N, (r+1) K/N) and
// gathers the others', so every rank makes the same update, bitwise that of one process.
// `teacher` holds the rows of this rank's micro-batches only (rank_rows()).
StepResult train_step(const Model& model, const std::vector<Parameter*>& params, Optimizer& optimizer,
                      const TrainConfig& t, const Batch& batch, uint64_t dropout_key, double lr,
                      const TeacherRows* teacher = nullptr, Comm* comm = nullptr);

// The rows of `batch` this rank trains on: all of them for one process.
Batch rank_rows(const Batch& batch, const Comm* comm);

// Refuses (na::Error naming train.micro_batches) a K that `ranks` processes cannot share.
void check_micro_batches(const TrainConfig& t, int ranks, const std::string& where);

}  // namespace na
