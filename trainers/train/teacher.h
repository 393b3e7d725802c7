// Teachers for knowledge distillation (train.distill): a checkpoint run alongside the student
// (forward only, under NoGrad: no tape), or a teacher dump of the training split
// (`nanoattn eval TEACHER.h5 --split train --dump teacher.h5 [--top-k K]`) read back a batch's
// rows at a time, so the teacher never runs again and memory does not grow with the split.
//
// Both give the same rows for the same batch when the batch is made of the split's eval windows
// (train.windows: aligned): a dump row's index is the stream position of its input token, and
// the live teacher runs on exactly the student's batch inputs, one window per forward (bit for
// bit a dump made with `--batch-size 1`).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/batcher.h"
#include "data/tokenizer.h"
#include "experiment/experiment.h"
#include "nanoattn/ops.h"

namespace na {

class Teacher {
 public:
  virtual ~Teacher() = default;
  // The teacher's predictions for every token of `batch` (B T rows, in the batch's order): full
  // log-probabilities, or the train.distill.top_k likeliest. Valid until the next call.
  virtual TeacherRows predict(const Batch& batch) = 0;
  virtual std::string describe() const = 0;  // "checkpoint PATH (step N)", "dump PATH (...)"
};

// The teacher cfg.train.distill names: a nanoattn checkpoint or a prediction dump, told apart by
// their `format` attribute. Throws na::Error naming the file, the key and the fix for anything
// else, a missing file, another vocabulary than `tokenizer`, a dump of another split, seq_len or
// text than `train` (the student's training split), a top_k out of range.
std::unique_ptr<Teacher> open_teacher(const RunConfig& cfg, const Tokenizer& tokenizer,
                                      const std::vector<int32_t>& train);

}  // namespace na
