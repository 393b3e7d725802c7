// `nanoattn run experiment.yaml`: every run of an experiment, then the comparison table.
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "commands.h"
#include "dist/comm.h"
#include "dump/kl.h"
#include "experiment/experiment.h"
#include "metrics/progress.h"
#include "model.h"
#include "plugin_loader.h"
#include "train/predictions.h"
#include "train/saved_run.h"
#include "train/summary_table.h"
#include "train/train_step.h"
#include "train/trainer.h"
#include "util/files.h"
#include "util/folder_lock.h"

namespace na::cli {
namespace fs = std::filesystem;

namespace {

struct RunArgs {
  std::string experiment;
  std::vector<std::string> sets, only;
  std::string out = "runs";
  bool resume = false, overwrite = false, allow_plugin_change = false;
};

// Corpora and plugin folders shared by several runs are loaded once.
struct Resources {
  std::map<std::string, std::unique_ptr<Corpus>> corpora;
  std::map<std::string, std::unique_ptr<PluginRegistry>> registries;

  const Corpus& corpus(const CorpusSpec& s) {
    const std::string key = cat(s.name_or_path, "|", s.tokenizer, "|", s.val_fraction, "|", s.test_fraction, "|",
                                s.max_vocab, "|", s.binary);
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

std::string text_of(const fs::path& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// compare_to: does this run's final val evaluation need a dump (it compares, or is compared to)?
bool needs_val_dump(const Experiment& exp, const RunConfig& r) {
  if (!r.compare_to.empty()) return true;
  for (const RunConfig& other : exp.runs)
    if (other.compare_to == r.name) return true;
  return false;
}

// A finished run skipped by --resume that has no val dump yet (it finished before compare_to was
// set): made from its final checkpoint, which gives the same predictions.
void dump_val_from_checkpoint(const std::string& ck, const std::string& dump, const Corpus& corpus,
                              bool allow_plugin_change) {
  std::fprintf(stderr, "writing %s from %s\n", dump.c_str(), ck.c_str());
  SavedRun run = load_saved_run(ck, allow_plugin_change);
  const int64_t T = run.cfg.eval_seq_len();
  const DumpInfo info = make_dump_info(run.cfg, run.tokenizer, ck, run.step, "val", EvalMode::Parallel, T,
                                       parse_dump_dtype(run.cfg.eval.dump_dtype, ck));
  evaluate_with_dump(*run.model, corpus.val, T, run.cfg.eval.batch_size, EvalMode::Parallel, dump, info);
}

// Each run with compare_to: KL(P_ref || P_run) over val, from the two dumps, into its summary;
// the per-token values go to <run>/kl_vs_<ref>.h5.
void compare_runs(const fs::path& exp_dir, const std::vector<const RunConfig*>& runs, std::vector<RunSummary>& done) {
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunConfig& r = *runs[i];
    if (r.compare_to.empty()) continue;
    const fs::path dir = exp_dir / r.name;
    KlOptions opt;
    opt.out = (dir / ("kl_vs_" + r.compare_to + ".h5")).string();
    opt.top = 0;
    const KlReport rep = compare_dumps(run_dump_path((exp_dir / r.compare_to).string(), "val"),
                                       run_dump_path(dir.string(), "val"), opt);
    done[i].compare_to = r.compare_to;
    done[i].kl_vs_ref = rep.kl_ab.mean;
    std::fprintf(stderr, "run %s vs %s over %lld val tokens: KL(%s||%s) %.4f, KL(%s||%s) %.4f, JS %.4f bits (%s)\n",
                 r.name.c_str(), r.compare_to.c_str(), static_cast<long long>(rep.tokens), r.compare_to.c_str(),
                 r.name.c_str(), rep.kl_ab.mean, r.name.c_str(), r.compare_to.c_str(), rep.kl_ba.mean, rep.js.mean,
                 opt.out.c_str());
  }
}

// Every file `nanoattn run` may write for these runs (the run folders' and the experiment
// folder's), for the check that none of them is an input.
std::vector<std::string> run_outputs(const fs::path& exp_dir, const std::vector<const RunConfig*>& runs) {
  std::vector<std::string> out = {(exp_dir / "summary.md").string(), (exp_dir / "summary.csv").string()};
  for (const RunConfig* r : runs) {
    const fs::path dir = exp_dir / r->name;
    for (const char* name : {"config.yaml", "metrics.jsonl", "metrics.csv", "checkpoint.h5", "best.h5", "summary.json",
                             "preds_val.h5", "preds_test.h5", FolderLock::kFileName})
      out.push_back((dir / name).string());
    if (!r->compare_to.empty()) out.push_back((dir / ("kl_vs_" + r->compare_to + ".h5")).string());
  }
  return out;
}

// Before anything is written: no output may be an input (the experiment file, a corpus), and
// each run folder is locked (made if missing) for the rest of the process.
std::vector<FolderLock> claim_run_folders(const RunArgs& a, const fs::path& exp_dir,
                                          const std::vector<const RunConfig*>& runs, Resources& res) {
  std::vector<std::string> inputs = {a.experiment};
  for (const RunConfig* r : runs) {
    inputs.push_back(res.corpus(r->data).path);
    if (r->train.distill.enabled()) inputs.push_back(r->train.distill.teacher);
  }
  refuse_overwriting_inputs(run_outputs(exp_dir, runs), inputs,
                            "choose another --out, or keep the experiment file, the corpus and a distillation "
                            "teacher out of its run folders");
  std::vector<FolderLock> locks;
  for (const RunConfig* r : runs) {
    const std::string dir = (exp_dir / r->name).string();
    ensure_folder(dir, "--out");
    locks.emplace_back(dir, dir, "the run's files");
  }
  return locks;
}

void run_experiment(const RunArgs& a) {
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
    check_training_memory(*r, probe);
    check_micro_batches(r->train, comm().size(), r->where);
    const bool ref_selected =
        std::any_of(runs.begin(), runs.end(), [&](const RunConfig* o) { return o->name == r->compare_to; });
    const std::string ref_dump = run_dump_path((exp_dir / r->compare_to).string(), "val");
    NA_CHECK(r->compare_to.empty() || ref_selected || fs::exists(ref_dump), a.experiment, "run '", r->name,
             "' compares to '", r->compare_to, "', which --only leaves out and which has no dump yet (", ref_dump,
             "): add --only ", r->compare_to);
  }
  // Under mpirun rank 0 alone owns and writes the run folders; the other ranks only train.
  const bool leader = comm().leader();
  const std::vector<FolderLock> locks = leader ? claim_run_folders(a, exp_dir, runs, res) : std::vector<FolderLock>();
  for (const RunConfig* r : runs) {
    const fs::path dir = exp_dir / r->name;
    NA_CHECK(a.resume || a.overwrite || !fs::exists(dir / "checkpoint.h5"), dir.string(),
             "already holds a checkpoint from an earlier run: pass --resume to continue it, --overwrite to "
             "start again, or --out to write elsewhere");
  }
  std::vector<RunSummary> done;
  for (const RunConfig* r : runs) {
    const fs::path dir = exp_dir / r->name;
    if (leader && a.overwrite && !a.resume) {
      fs::remove(dir / "checkpoint.h5");
      fs::remove(dir / "summary.json");
    }
    const bool dump_val = needs_val_dump(exp, *r);
    if (a.resume && fs::exists(dir / "summary.json") && fs::exists(dir / "checkpoint.h5")) {
      RunSummary s = read_summary((dir / "summary.json").string());
      const fs::path saved = dir / "config.yaml";
      const std::string changes = s.finished && fs::exists(saved) ? config_changes(text_of(saved), *r) : "";
      NA_CHECK(changes.empty(), dir.string(), "run ", r->name, " finished with other settings (", changes,
               "): pass --overwrite to train it again with these, or use a new --out folder");
      if (s.finished) {
        if (leader) std::fprintf(stderr, "run %s: already finished (%s), skipped\n", r->name.c_str(), dir.c_str());
        const std::string dump = run_dump_path(dir.string(), "val");
        if (leader && dump_val && !fs::exists(dump))
          dump_val_from_checkpoint((dir / "checkpoint.h5").string(), dump, res.corpus(r->data),
                                   a.allow_plugin_change);
        done.push_back(s);
        continue;
      }
    }
    TrainOptions opt;
    opt.run_dir = dir.string();
    opt.resume = a.resume;
    opt.out = stderr;
    opt.live = Progress::is_terminal(stderr);
    opt.dump_val = dump_val;
    opt.allow_plugin_change = a.allow_plugin_change;
    done.push_back(train_run(*r, res.corpus(r->data), res.plugins(r->plugin_paths), opt));
  }
  if (!leader) return;
  compare_runs(exp_dir, runs, done);
  ensure_folder(exp_dir.string(), "--out");
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
  cmd->add_flag("--allow-plugin-change", a->allow_plugin_change,
                "resume even if an attention plugin's .so differs from the one the checkpoint was trained with "
                "(recorded in summary.json)");
  cmd->callback([a] {
    if (comm().leader()) print_blas_kernels();
    run_experiment(*a);
  });
}

}  // namespace na::cli
