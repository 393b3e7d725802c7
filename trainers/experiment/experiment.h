// Experiment files: one YAML with data, model, training, evaluation and a list of runs.
//
//   name: quickstart            # default: the file's stem
//   seed: 1
//   threads: 0                  # 0 = all cores; any count gives bitwise the same numbers
//   plugin_paths: []            # extra plugin folders (relative to this file)
//   data:  {corpus: kjv, tokenizer: char, val_fraction: 0.05, test_fraction: 0.05, max_vocab: 0}
//   model: {d_model: 128, max_len: 256, blocks: [...]}         # see models/model.h
//   train: {steps: 2000, batch_size: 16, seq_len: 256, lr: 1e-3, ...,
//           windows: random, distill: {teacher: PATH, alpha: 0.5, temperature: 2.0, top_k: 0}}
//   eval:  {every: 500, batch_size: 16, test: true, dump: false, dump_dtype: float32}
//   log:   {every: 10, tensorboard: false}
//   runs:                       # each run = the sections above, deep-merged with its overrides
//     - name: softmax
//     - name: linear
//       model: {attention: {plugin: linear}}
//
// Overrides (a run's maps and `--set a.b.c=value`) merge maps key by key and replace scalars
// and lists; a number in a path indexes a list (`model.blocks.2.repeat.n=6`).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "data/corpus.h"

namespace na {

// Knowledge distillation (train.distill): the student's loss is
// alpha CE + (1 - alpha) tau^2 KL(teacher_tau || student_tau) (distill_loss in nanoattn/ops.h).
struct DistillConfig {
  std::string teacher;        // absolute path: a checkpoint (run alongside) or a teacher dump; "" = off
  double alpha = 0.5;         // weight of the cross-entropy with the targets, in [0, 1]
  double temperature = 2.0;   // tau > 0
  int64_t top_k = 0;          // 0: the teacher's full distribution; k: its k likeliest + the rest
  bool enabled() const { return !teacher.empty(); }
};

struct TrainConfig {
  int64_t steps = 1000, batch_size = 16, seq_len = 256;
  // The batch as this many micro-batches of batch_size / micro_batches rows, each with its own
  // forward + backward, their gradients summed in a fixed order (gradient accumulation; under
  // mpirun the ranks share them, bitwise as one process). 1: one forward over the whole batch.
  int64_t micro_batches = 1;
  std::string optimizer = "adamw";  // adamw | sgd
  double lr = 1e-3, min_lr_ratio = 0.1;
  int64_t warmup = 100;
  double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.99, eps = 1e-8, momentum = 0.9;
  double grad_clip = 1.0;        // 0 = off
  double label_smoothing = 0.0;  // training loss only; bpc is always the plain NLL
  int64_t checkpoint_every = 0;  // steps; 0 = at the end (and on evaluation)
  double time_limit = 0;         // seconds; 0 = none. Stops early (not reproducible: a guard)
  int64_t patience = 0;          // early stopping: stop after this many evaluations without a new
                                 // best val; 0 = off (needs eval.every)
  // random: windows at any offset; aligned: the training split's eval windows of seq_len (what a
  // teacher dump of the split holds), drawn from (seed, batch number).
  std::string windows = "random";
  DistillConfig distill;         // requires windows: aligned
};

struct EvalConfig {
  int64_t every = 0;       // steps between val evaluations; 0 = only at the end
  int64_t batch_size = 16; // windows per forward
  int64_t seq_len = 0;     // 0 = train.seq_len
  bool test = true;        // test split at the end
  bool dump = false;       // final evaluations also write <run>/preds_<split>.h5 (prediction dumps)
  std::string dump_dtype = "float32";  // float32 | float16: the dumps' log-probabilities
  bool keep_best = false;  // keep the best-val checkpoint as best.h5; the test split is evaluated there
};

struct LogConfig {
  int64_t every = 10;      // progress lines and metrics records
  bool tensorboard = false;
};

struct RunConfig {
  std::string experiment, name;
  std::string where;  // the source, for errors ("exp.yaml", "ck.h5:config")
  uint64_t seed = 1;
  int64_t threads = 0;
  std::vector<std::string> plugin_paths;  // absolute
  CorpusSpec data;                        // a local file's path is absolute
  YAML::Node model;
  TrainConfig train;
  EvalConfig eval;
  LogConfig log;
  std::string compare_to;  // another run of the experiment: the summary table gets KL(P_that || P_this)

  // Every setting with its defaults filled in: what config.yaml and checkpoints hold, and what
  // parse_run reads back.
  YAML::Node resolved() const;
  std::string resolved_text() const;
  int64_t eval_seq_len() const { return eval.seq_len > 0 ? eval.seq_len : train.seq_len; }
};

struct Experiment {
  std::string name, path;
  std::vector<RunConfig> runs;
};

// Reads and checks an experiment file (every unknown key, wrong type or out-of-range value is
// an error naming file:line:col); `overrides` are "key.path=value" applied to every run.
Experiment load_experiment(const std::string& path, const std::vector<std::string>& overrides = {});
// The same from YAML text in memory: `path` names it in errors and relative paths are taken from
// its folder (it need not exist). The fuzz harnesses (tests/fuzz/) enter here.
Experiment load_experiment_text(const std::string& text, const std::string& path,
                                const std::vector<std::string>& overrides = {});

// One run's settings from a resolved config (a run section as resolved() writes it). `dir` is
// the folder relative paths are taken from.
RunConfig parse_run(const YAML::Node& node, const std::string& where, const std::string& dir);

// `assignment` = "a.b.c=value": sets that path in `root` (creating maps on the way), the value
// parsed as YAML ("3", "[1, 2]", "{plugin: linear}").
void apply_override(YAML::Node root, const std::string& assignment);
// Merges `over` into `base` (maps key by key; anything else replaces).
void deep_merge(YAML::Node base, const YAML::Node& over);

}  // namespace na
