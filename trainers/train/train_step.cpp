#include "train/train_step.h"

#include <cmath>

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

StepResult train_step(const Model& model, const std::vector<Parameter*>& params, Optimizer& optimizer,
                      const TrainConfig& t, const Batch& batch, uint64_t dropout_key, double lr,
                      const TeacherRows* teacher) {
  ForwardOptions fo;
  fo.training = true;
  fo.dropout_key = dropout_key;
  Var logits = model.forward(batch.inputs, batch.B, batch.T, fo);
  StepResult r;
  Var loss;
  if (teacher) {
    DistillParts parts;
    loss = distill_loss(logits, batch.targets, *teacher, static_cast<float>(t.distill.alpha),
                        static_cast<float>(t.distill.temperature), &parts);
    r.ce = parts.ce;
  } else {
    loss = cross_entropy(logits, batch.targets, static_cast<float>(t.label_smoothing));
  }
  r.loss = loss.value().item();
  if (!std::isfinite(r.loss)) {
    tape().reset();
    return r;
  }
  tape().backward(loss);
  {
    NA_PROFILE_OP("clip_grad_norm");
    r.grad_norm = t.grad_clip > 0 ? clip_grad_norm(params, t.grad_clip) : grad_norm(params);
  }
  {
    NA_PROFILE_OP("optimizer");
    optimizer.step(static_cast<float>(lr));
    optimizer.zero_grad();
  }
  tape().reset();
  return r;
}

}  // namespace na
