// Study files: one YAML describing a whole comparison that `nanoattn study` runs (and resumes):
// a softmax baseline tuned on a small grid, attention variants matched to its parameter count,
// each trained plain and distilled from the baseline, on several seeds and corpora.
//
//   name: rfr
//   seeds: [1, 2, 3]
//   jobs: 2                       # runs at a time (threads split between them: same numbers)
//   corpora: [{name: tinyshakespeare, data: {corpus: tinyshakespeare}}, ...]
//   experiment: {model: ..., train: ..., eval: ..., log: ...}   # the baseline, as in an experiment file
//   tune: {train.lr: [1e-3, 2e-3], model.dropout.p: [0, 0.1]}  # the baseline's grid (first seed)
//   match: {budget: params, tolerance: 0.02, solve: d_ff}        # see models/budget_match.h
//   variants: [{name: elu, model: {attention: {plugin: linear}}}, ...]
//   distill: {alpha: 0.5, temperature: 2.0, top_k: 8}            # every variant also distilled
//   generate: {tokens: 1000}      # generation speed of each best checkpoint
//   quick: {seeds: [1], set: {train.steps: 100}, tune: {...}, variants: [elu, ...]}  # --quick
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace na {

struct StudyCorpus {
  std::string name;  // folder name
  YAML::Node data;   // an experiment's data section (a relative corpus path is made absolute)
};

struct StudyVariant {
  std::string name;
  YAML::Node model;    // overrides merged into the baseline's model
  bool distill = true; // also trained distilled from the baseline
};

// One point of the tuning grid: its folder name ("lr0.002-p0.1") and its --set assignments.
struct TunePoint {
  std::string name;
  std::vector<std::pair<std::string, YAML::Node>> settings;  // key path -> value
};

struct StudyConfig {
  std::string name, path, dir;  // dir: the study file's folder (relative paths start there)
  bool quick = false;
  std::vector<uint64_t> seeds;
  int64_t jobs = 1;
  std::vector<StudyCorpus> corpora;
  YAML::Node experiment;  // seed-less experiment sections: model, train, eval, log, plugin_paths
  std::vector<std::pair<std::string, std::vector<YAML::Node>>> tune;  // key path -> values, in file order
  std::string budget = "params", solve = "d_ff";
  double tolerance = 0.02;
  std::vector<StudyVariant> variants;
  double distill_alpha = 0.5, distill_temperature = 2.0;
  int64_t distill_top_k = 8;
  int64_t generate_tokens = 1000;

  std::vector<TunePoint> tune_points() const;  // the grid in row-major order of `tune`
};

// Reads and checks a study file (unknown keys, wrong types and bad names are errors naming
// file:line:col). quick: apply its `quick:` section. corpus: non-empty replaces the corpora with
// this one text file. sets: "key.path=value" applied to the experiment of every run.
StudyConfig load_study(const std::string& path, bool quick, const std::string& corpus,
                       const std::vector<std::string>& sets);

}  // namespace na
