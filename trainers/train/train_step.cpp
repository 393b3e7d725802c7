#include "train/train_step.h"

#include <cmath>
#include <cstring>

#include "dist/comm.h"
#include "model.h"
#include "nanoattn/core.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/sgd.h"

namespace na {

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& t, std::vector<Parameter*> params) {
  if (t.optimizer == "sgd") {
    SGDConfig c;
    c.momentum = static_cast<float>(t.momentum);
    c.weight_decay = static_cast<float>(t.weight_decay);
    return std::make_unique<SGD>(std::move(params), c);
  }
  AdamWConfig c;
  c.beta1 = static_cast<float>(t.beta1);
  c.beta2 = static_cast<float>(t.beta2);
  c.eps = static_cast<float>(t.eps);
  c.weight_decay = static_cast<float>(t.weight_decay);
  return std::make_unique<AdamW>(std::move(params), c);
}

void check_micro_batches(const TrainConfig& t, int ranks, const std::string& where) {
  NA_CHECK(t.micro_batches % ranks == 0, where, ranks, " MPI ranks share the micro-batches of each step, but "
           "train.micro_batches is ", t.micro_batches, ": set train.micro_batches to a multiple of ", ranks,
           " that divides train.batch_size ", t.batch_size, " (e.g. --set train.micro_batches=", ranks, ")");
}

namespace {

int ranks_of(const Comm* comm) { return comm ? comm->size() : 1; }

// Rows [first, first + count) of a batch.
Batch rows(const Batch& b, int64_t first, int64_t count) {
  Batch r;
  r.B = count;
  r.T = b.T;
  r.inputs.assign(b.inputs.begin() + first * b.T, b.inputs.begin() + (first + count) * b.T);
  r.targets.assign(b.targets.begin() + first * b.T, b.targets.begin() + (first + count) * b.T);
  if (!b.starts.empty()) r.starts.assign(b.starts.begin() + first, b.starts.begin() + first + count);
  return r;
}

// Micro-batch j of n (equal parts) of the teacher's rows.
TeacherRows part(const TeacherRows& t, int64_t j, int64_t n) {
  TeacherRows r = t;
  const size_t lp = t.logprobs.size() / static_cast<size_t>(n), id = t.ids.size() / static_cast<size_t>(n);
  r.logprobs = t.logprobs.subspan(static_cast<size_t>(j) * lp, lp);
  if (!t.ids.empty()) r.ids = t.ids.subspan(static_cast<size_t>(j) * id, id);
  return r;
}

// Forward and the loss, on the tape; the loss's value and (with a teacher) its CE part.
Var forward_loss(const Model& model, const TrainConfig& t, const Batch& batch, uint64_t dropout_key,
                 const TeacherRows* teacher, double* ce) {
  ForwardOptions fo;
  fo.training = true;
  fo.dropout_key = dropout_key;
  Var logits = model.forward(batch.inputs, batch.B, batch.T, fo);
  if (!teacher) return cross_entropy(logits, batch.targets, static_cast<float>(t.label_smoothing));
  DistillParts parts;
  Var loss = distill_loss(logits, batch.targets, *teacher, static_cast<float>(t.distill.alpha),
                          static_cast<float>(t.distill.temperature), &parts);
  *ce = parts.ce;
  return loss;
}

void clip_and_update(const std::vector<Parameter*>& params, Optimizer& optimizer, const TrainConfig& t, double lr,
                     StepResult& r) {
  {
    NA_PROFILE_OP("clip_grad_norm");
    r.grad_norm = t.grad_clip > 0 ? clip_grad_norm(params, t.grad_clip) : grad_norm(params);
  }
  {
    NA_PROFILE_OP("optimizer");
    optimizer.step(static_cast<float>(lr));
    optimizer.zero_grad();
  }
}

// sum (+)= one micro-batch's gradient (n values): the same float additions in the same order
// on every rank and for one process.
void add_gradient(float* sum, const float* g, size_t n, bool first) {
  if (first) {
    std::memcpy(sum, g, n * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; ++i) sum[i] += g[i];
}

StepResult micro_batch_step(const Model& model, const std::vector<Parameter*>& params, Optimizer& optimizer,
                            const TrainConfig& t, const Batch& batch, uint64_t dropout_key, double lr,
                            const TeacherRows* teacher, Comm* comm) {
  const int64_t K = t.micro_batches, N = ranks_of(comm), mine = K / N, rows_per = batch.B / K;
  const int64_t first = (comm ? comm->rank() : 0) * mine;
  size_t P = 0;
  for (Parameter* p : params) P += static_cast<size_t>(p->grad().numel());
  // One process sums as it goes; ranks keep theirs to gather. Per micro-batch: loss, ce.
  std::vector<float> sum(P), local(N > 1 ? static_cast<size_t>(mine) * P : 0);
  std::vector<double> losses(2 * static_cast<size_t>(mine));
  for (int64_t j = 0; j < mine; ++j) {
    const int64_t k = first + j;
    const Batch mb = rows(batch, k * rows_per, rows_per);
    const TeacherRows mt = teacher ? part(*teacher, j, mine) : TeacherRows();
    optimizer.zero_grad();  // each micro-batch's gradient from zero
    double ce = NAN;
    Var loss = forward_loss(model, t, mb, Rng::mix(dropout_key, static_cast<uint64_t>(k)), teacher ? &mt : nullptr, &ce);
    losses[2 * j] = loss.value().item();
    losses[2 * j + 1] = ce;
    if (std::isfinite(losses[2 * j])) tape().backward(loss);  // else no update below, on every rank
    tape().reset();
    size_t off = 0;
    for (Parameter* p : params) {
      const size_t n = static_cast<size_t>(p->grad().numel());
      if (N > 1)
        std::memcpy(local.data() + static_cast<size_t>(j) * P + off, p->grad().data(), n * sizeof(float));
      else
        add_gradient(sum.data() + off, p->grad().data(), n, j == 0);
      off += n;
    }
  }
  std::vector<double> all_losses(2 * static_cast<size_t>(K));
  if (N > 1) {
    std::vector<float> all(static_cast<size_t>(K) * P);
    comm->allgather(local.data(), local.size(), all.data());
    comm->allgather(losses.data(), losses.size(), all_losses.data());
    for (int64_t k = 0; k < K; ++k) add_gradient(sum.data(), all.data() + static_cast<size_t>(k) * P, P, k == 0);
  } else {
    all_losses = losses;
  }
  StepResult r;
  double loss = 0, ce = 0;
  for (int64_t k = 0; k < K; ++k) loss += all_losses[2 * k], ce += all_losses[2 * k + 1];
  r.loss = loss / static_cast<double>(K);
  r.ce = teacher ? ce / static_cast<double>(K) : NAN;
  if (!std::isfinite(r.loss)) {
    optimizer.zero_grad();
    return r;
  }
  const float scale = static_cast<float>(1.0 / static_cast<double>(K));
  size_t off = 0;
  for (Parameter* p : params) {
    float* g = p->grad().data();
    const size_t n = static_cast<size_t>(p->grad().numel());
    for (size_t i = 0; i < n; ++i) g[i] = sum[off + i] * scale;
    off += n;
  }
  clip_and_update(params, optimizer, t, lr, r);
  return r;
}

}  // namespace

Batch rank_rows(const Batch& batch, const Comm* comm) {
  const int N = ranks_of(comm);
  if (N == 1) return batch;
  const int64_t per_rank = batch.B / N;
  return rows(batch, comm->rank() * per_rank, per_rank);
}

StepResult train_step(const Model& model, const std::vector<Parameter*>& params, Optimizer& optimizer,
                      const TrainConfig& t, const Batch& batch, uint64_t dropout_key, double lr,
                      const TeacherRows* teacher, Comm* comm) {
  check_micro_batches(t, ranks_of(comm), "train_step");
  if (t.micro_batches > 1)
    return micro_batch_step(model, params, optimizer, t, batch, dropout_key, lr, teacher, comm);
  StepResult r;
  double ce = NAN;
  Var loss = forward_loss(model, t, batch, dropout_key, teacher, &ce);
  r.ce = ce;
  r.loss = loss.value().item();
  if (!std::isfinite(r.loss)) {
    tape().reset();
    return r;
  }
  tape().backward(loss);
  clip_and_update(params, optimizer, t, lr, r);
  tape().reset();
  return r;
}

}  // namespace na
