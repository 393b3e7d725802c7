// One run of an experiment: builds the model, trains it, evaluates it over the whole held-out
// splits, and writes the run's folder:
//   config.yaml        the resolved settings, then the session's provenance
//   metrics.jsonl/.csv training and evaluation records (tensorboard/ when asked)
//   checkpoint.h5      the newest checkpoint (atomically replaced), the final one at the end
//   best.h5            with eval.keep_best: the best-val checkpoint; the test split is evaluated there
//   summary.json       params, val/test bits, tokens/s, wall time
//   preds_<split>.h5   prediction dumps of the final evaluations, with eval.dump (or compare_to)
#pragma once
#include <cstdio>
#include <string>

#include "data/corpus.h"
#include "experiment/experiment.h"
#include "train/plugin_check.h"
#include "train/provenance.h"

namespace na {

class Model;
class PluginRegistry;

struct RunSummary {
  std::string run;
  std::string unit;           // "bpc" (char level) or "bpw" (word level)
  std::string plugins;        // the attention plugins the model uses, e.g. "linear"
  int64_t params = 0;
  int64_t steps = 0;          // optimizer updates done
  double val_bits = NAN, test_bits = NAN, best_val_bits = NAN;
  int64_t best_step = -1;     // the step of best_val_bits
  bool test_at_best = false;  // eval.keep_best: the test numbers (and dumps) are the best checkpoint's
  double val_ppl = NAN, test_ppl = NAN;
  double tokens_per_s = 0;    // training throughput (forward + backward + update)
  double train_seconds = 0;   // training wall time over all sessions (resumes included)
  double wall_seconds = 0;    // this session, everything included
  bool finished = false;      // reached train.steps (not stopped by time_limit or a signal)
  std::string compare_to;     // the reference run (compare_to), and this run's mean
  double kl_vs_ref = NAN;     // KL(P_ref || P_run) over val, bits per token (set by `nanoattn run`)
  std::vector<PluginChange> plugin_changes;  // resumed with --allow-plugin-change over these
  Provenance provenance;      // this session's: version, commit, host, start time, BLAS kernels
};

struct TrainOptions {
  std::string run_dir;        // created if missing
  bool resume = false;        // continue from run_dir/checkpoint.h5 if it exists
  std::FILE* out = stderr;    // progress
  bool live = false;          // progress as one live line (a terminal)
  int64_t stop_at_step = 0;   // > 0: save and return after this step, as an interrupted run would
  bool dump_val = false;      // dump the final val evaluation to run_dir/preds_val.h5 (compare_to)
  bool allow_plugin_change = false;  // resume even if a plugin's .so differs from the checkpoint's
};

// Trains (or resumes) one run. A resume whose model plugins differ from the checkpoint's is
// refused (na::Error) unless opt.allow_plugin_change. On SIGINT / SIGTERM (see nanoattn/stop.h) the current step
// finishes, a checkpoint is written, and it throws Stopped saying what is kept and how to
// resume; a stop during an evaluation keeps the last checkpoint as it was.
RunSummary train_run(const RunConfig& cfg, const Corpus& corpus, const PluginRegistry& plugins,
                     const TrainOptions& opt);

// The settings that differ between a run's saved config (config.yaml, or a checkpoint's) and
// cfg, as "train.steps: 40 -> 80, ..."; "" when none. The thread count, the time guard,
// prediction dumps, compare_to and config.yaml's provenance do not change the numbers and are
// not compared; numbers are compared by value (0.004 == 0.0040000000000000001).
std::string config_changes(const std::string& saved, const RunConfig& cfg);

// Refuses a run whose training step cannot fit in memory, before anything is allocated for it:
// a lower bound of what a step needs (weights and gradients; logits and their gradients, and
// a few d_model-wide activations per attention block, for every token of a batch).
void check_training_memory(const RunConfig& cfg, const Model& model);

// The attention plugins of a run's model, e.g. "softmax", "linear", "linear+softmax".
std::string attention_plugins(const RunConfig& cfg);

// Reads a finished run's summary.json (to skip it on --resume).
RunSummary read_summary(const std::string& path);

}  // namespace na
