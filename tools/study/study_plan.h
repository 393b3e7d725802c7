// What `nanoattn study` runs, as jobs for job_pool.h, and the manifest it keeps (study.json).
//
// OUT/study.json                    the manifest: corpora, tuning, every run and its status
// OUT/<corpus>/tune.yaml            the baseline's tuning grid (first seed) -> tune/<point>/
// OUT/<corpus>/softmax.yaml         the tuned baseline, one run per seed    -> softmax/seed<N>/
// OUT/<corpus>/<variant>.yaml       a variant matched to the baseline       -> <variant>/seed<N>/
// OUT/<corpus>/<variant>.distill.yaml  the same, distilled from the baseline -> <variant>.distill/seed<N>/
// OUT/<corpus>/teacher_train.h5     the baseline's (first seed) top-k predictions over the training split
// OUT/logs/<corpus>/...             every subprocess's output
// Each run folder is an ordinary run (best.h5, preds_test.h5, summary.json, ...) plus cost.json,
// kl_vs_softmax.h5 (variants), recurrent.json (RNN-capable variants), generate.json (baseline).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "study/job_pool.h"
#include "study/study_config.h"

namespace na {

class StudyPlan {
 public:
  // Loads each corpus (for its vocabulary) and checks every generated experiment before any job
  // runs: a mistake in the study file fails now, not hours later.
  // `cores`: the CPUs its jobs share (0: this machine's).
  StudyPlan(StudyConfig st, std::string out, std::string command, int64_t cores = 0);

  std::vector<Job>& jobs() { return jobs_; }
  const std::string& out() const { return out_; }
  // Rewrites OUT/study.json from the files on disk (atomically).
  void write_manifest() const;
  // The matched variants of each corpus (for --dry-run), as an aligned text table.
  std::string match_table() const;

 private:
  struct Run {
    std::string corpus, variant, label, experiment, dir;  // dir: relative to out
    bool baseline = false, distilled = false, recurrent = false;
    uint64_t seed = 0;
    std::string override_text;
  };
  struct Corpus;
  void plan_corpus(size_t c);

  StudyConfig st_;
  std::string out_, command_;
  int64_t threads_ = 1;
  std::vector<std::unique_ptr<Corpus>> corpora_;
  std::vector<Run> runs_;
  std::vector<Job> jobs_;

 public:
  ~StudyPlan();
  StudyPlan(const StudyPlan&) = delete;
  StudyPlan& operator=(const StudyPlan&) = delete;
};

}  // namespace na
