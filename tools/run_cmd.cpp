// `nanoattn run experiment.yaml`: every run of an experiment, then the comparison table.
#include <filesystem>
#include <map>
#include <memory>

#include "commands.h"
#include "experiment/experiment.h"
#include "metrics/progress.h"
#include "model.h"
#include "plugin_loader.h"
#include "train/summary_table.h"
#include "train/trainer.h"
#include "util/files.h"

namespace na::cli {
namespace fs = std::filesystem;

namespace {

struct RunArgs {
  std::string experiment;
  std::vector<std::string> sets, only;
  std::string out = "runs";
  bool resume = false, overwrite = false;
};

// Corpora and plugin folders shared by several runs are loaded once.
struct Resources {
  std::map<std::string, std::unique_ptr<Corpus>> corpora;
  std::map<std::string, std::unique_ptr<PluginRegistry>> registries;

  const Corpus& corpus(const CorpusSpec& s) {
    const std::string key = cat(s.name_or_path, "|", s.tokenizer, "|", s.val_fraction, "|", s.test_fraction, "|",
                                s.max_vocab);
    auto& c = corpora[key];
    if (!c) c = std::make_unique<Corpus>(load_corpus(s));
    return *c;
  }
  const PluginRegistry& plugins(const std::vector<std::string>& dirs) {
    std::string key;
    for (const std::string& d : dirs) key += d + "\n";
    auto& r = registries[key];
    if (!r) r = std::make_unique<PluginRegistry>(dirs);
    return *r;
  }
};

void run_experiment(const RunArgs& a) {
  install_stop_handlers();
  Experiment exp = load_experiment(a.experiment, a.sets);
  std::vector<const RunConfig*> runs;
  for (const RunConfig& r : exp.runs)
    if (a.only.empty() || std::find(a.only.begin(), a.only.end(), r.name) != a.only.end()) runs.push_back(&r);
  if (runs.empty()) {
    std::string names;
    for (const RunConfig& r : exp.runs) names += (names.empty() ? "" : ", ") + r.name;
    throw Error(a.experiment, cat("no run matches --only; the runs are: ", names));
  }
  const fs::path exp_dir = fs::path(a.out) / exp.name;
  // Check every run before training any: a typo in the last run should not cost an hour.
  Resources res;
  for (const RunConfig* r : runs) {
    const Corpus& corpus = res.corpus(r->data);
    Model probe(r->model, r->where, static_cast<int64_t>(corpus.tokenizer.size()), res.plugins(r->plugin_paths),
                r->seed);
    NA_CHECK(r->train.seq_len <= probe.dims().max_len && r->eval_seq_len() <= probe.dims().max_len, r->where,
             "run '", r->name, "': train.seq_len ", r->train.seq_len, " / eval.seq_len ", r->eval_seq_len(),
             " exceed model.max_len ", probe.dims().max_len);
    const fs::path dir = exp_dir / r->name;
    NA_CHECK(a.resume || a.overwrite || !fs::exists(dir / "checkpoint.h5"), dir.string(),
             "already holds a checkpoint from an earlier run: pass --resume to continue it, --overwrite to "
             "start again, or --out to write elsewhere");
  }
  std::vector<RunSummary> done;
  for (const RunConfig* r : runs) {
    const fs::path dir = exp_dir / r->name;
    if (a.overwrite && !a.resume) {
      fs::remove(dir / "checkpoint.h5");
      fs::remove(dir / "summary.json");
    }
    if (a.resume && fs::exists(dir / "summary.json") && fs::exists(dir / "checkpoint.h5")) {
      RunSummary s = read_summary((dir / "summary.json").string());
      if (s.finished) {
        std::fprintf(stderr, "run %s: already finished (%s), skipped\n", r->name.c_str(), dir.c_str());
        done.push_back(s);
        continue;
      }
    }
    TrainOptions opt;
    opt.run_dir = dir.string();
    opt.resume = a.resume;
    opt.out = stderr;
    opt.live = Progress::is_terminal(stderr);
    done.push_back(train_run(*r, res.corpus(r->data), res.plugins(r->plugin_paths), opt));
  }
  fs::create_directories(exp_dir);
  const std::string table = summary_markdown(exp.name, done);
  write_file_atomic((exp_dir / "summary.md").string(), table);
  write_file_atomic((exp_dir / "summary.csv").string(), summary_csv(done));
  std::printf("\n%s\nresults: %s\n", table.c_str(), exp_dir.c_str());
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "Train and evaluate every run of an experiment file, then print the "
                                        "comparison table");
  cmd->add_option("experiment", a->experiment, "experiment YAML file")->required();
  cmd->add_option("--set", a->sets, "override a setting in every run, e.g. --set train.steps=100 (repeatable)");
  cmd->add_option("--out", a->out, "output folder; runs go to OUT/<experiment>/<run>")->capture_default_str();
  cmd->add_option("--only", a->only, "train only the named runs (repeatable)");
  cmd->add_flag("--resume", a->resume, "continue each run from its newest checkpoint; finished runs are skipped");
  cmd->add_flag("--overwrite", a->overwrite, "start runs again even if their folders hold checkpoints");
  cmd->callback([a] { run_experiment(*a); });
}

}  // namespace na::cli
