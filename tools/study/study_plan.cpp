#include "study/study_plan.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "experiment/experiment.h"
#include "nanoattn/core.h"
#include "plugin_loader.h"
#include "study/budget_match.h"
#include "study/cost_json.h"
#include "train/sample.h"
#include "train/saved_run.h"
#include "train/trainer.h"
#include "util/files.h"
#include "git_commit.h"

namespace na {
namespace fs = std::filesystem;
using json = nlohmann::json;

struct StudyPlan::Corpus {
  StudyCorpus spec;
  std::string dir;  // OUT/<name>
  int64_t vocab = 0, seq_len = 0, context = 0;
  std::vector<TunePoint> points;
  ModelCost base_cost;
  std::vector<MatchResult> matched;  // per variant, in st_.variants order
};

namespace {

std::string path_in(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }

bool finished_run(const std::string& run_dir) {
  const std::string s = path_in(run_dir, "summary.json");
  return fs::exists(s) && read_summary(s).finished;
}

// best_val of a tuning point's run, NaN until it has finished.
double tuned_val(const std::string& run_dir) {
  const std::string s = path_in(run_dir, "summary.json");
  if (!fs::exists(s)) return NAN;
  const RunSummary r = read_summary(s);
  return r.finished ? r.best_val_bits : NAN;
}

std::string yaml_text(const YAML::Node& n) {
  YAML::Emitter e;
  e << n;
  return std::string(e.c_str()) + "\n";
}

std::string flow_text(const YAML::Node& n) {
  YAML::Emitter e;
  e << YAML::Flow << n;
  return e.c_str();
}

// Writes a generated file only when its text changed: a rerun leaves it (and its time) alone.
void write_if_changed(const std::string& path, const std::string& text) {
  std::ifstream in(path);
  std::stringstream old;
  old << in.rdbuf();
  if (!in || old.str() != text) write_file_atomic(path, text);
}

struct Generation {
  int64_t tokens = 0;  // per sample: at most max_len - 1 (learned positions end there)
  double tokens_per_s = 0;
};

// Sampling speed of a checkpoint, one sequence: whole samples repeated for at least half a
// second, so a short one is still timed over many tokens.
Generation time_generation(const std::string& checkpoint, int64_t tokens, bool recurrent, int64_t threads) {
  SavedRun run = load_saved_run(checkpoint);
  set_num_threads(static_cast<int>(threads));
  SampleOptions o;
  o.tokens = std::min(tokens, run.model->dims().max_len - 1);
  o.mode = recurrent ? EvalMode::Recurrent : EvalMode::Parallel;
  const auto t0 = std::chrono::steady_clock::now();
  double seconds = 0;
  int64_t total = 0;
  while (seconds < 0.5) {
    sample(*run.model, {0}, o);
    total += o.tokens;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return {o.tokens, static_cast<double>(total) / seconds};
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  NA_CHECK(in, path, "cannot open");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(path, cat("is not valid JSON: ", e.what()));
  }
}

}  // namespace

StudyPlan::~StudyPlan() = default;

StudyPlan::StudyPlan(StudyConfig st, std::string out, std::string command, int64_t cores)
    : st_(std::move(st)), out_(fs::absolute(out).lexically_normal().string()), command_(std::move(command)) {
  if (cores <= 0) cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  threads_ = std::max<int64_t>(1, cores / st_.jobs);
  fs::create_directories(out_);
  for (size_t c = 0; c < st_.corpora.size(); ++c) plan_corpus(c);
  // The report, once everything else has run (or failed: it reports what there is).
  Job report;
  report.name = "report";
  report.argv = {"report", out_};
  report.last = true;
  report.log = path_in(out_, "logs/report.log");
  jobs_.push_back(report);
}

void StudyPlan::plan_corpus(size_t ci) {
  auto corpus = std::make_unique<Corpus>();
  Corpus& C = *corpus;
  C.spec = st_.corpora[ci];
  C.dir = path_in(out_, C.spec.name);
  C.points = st_.tune_points();
  fs::create_directories(C.dir);
  const std::string logs = path_in(out_, "logs/" + C.spec.name);

  // An experiment file of this study: the study's sections, this corpus, `model`, runs.
  auto experiment = [this, &C](const std::string& name, const YAML::Node& model) {
    YAML::Node e(YAML::NodeType::Map);
    e["name"] = name;
    e["threads"] = threads_;
    if (st_.experiment["plugin_paths"]) e["plugin_paths"] = YAML::Clone(st_.experiment["plugin_paths"]);
    e["data"] = YAML::Clone(C.spec.data);
    e["model"] = YAML::Clone(model);
    for (const char* k : {"train", "eval", "log"})
      if (st_.experiment[k]) e[k] = YAML::Clone(st_.experiment[k]);
    // What the study reads back: the best checkpoint's test numbers and its test predictions.
    apply_override(e, "eval.keep_best=true");
    apply_override(e, "eval.test=true");
    apply_override(e, "eval.dump=true");
    return e;
  };
  auto seed_runs = [this](YAML::Node e) {
    for (uint64_t seed : st_.seeds) {
      YAML::Node r(YAML::NodeType::Map);
      r["name"] = cat("seed", seed);
      r["seed"] = seed;
      e["runs"].push_back(r);
    }
  };
  auto write_experiment = [this, &C](const std::string& file, const YAML::Node& e) {
    const std::string path = path_in(C.dir, file);
    write_if_changed(path, yaml_text(e));
    try {
      return load_experiment(path);
    } catch (const Error& err) {
      throw Error(st_.path, cat("the study makes an experiment nanoattn refuses (", path, "): ", err.what()));
    }
  };

  // The tuning grid, and what matching needs: the vocabulary and the lengths.
  YAML::Node tune = experiment("tune", st_.experiment["model"]);
  tune["seed"] = st_.seeds[0];
  apply_override(tune, "eval.dump=false");
  for (const TunePoint& p : C.points) {
    YAML::Node r(YAML::NodeType::Map);
    r["name"] = p.name;
    for (const auto& [key, value] : p.settings) apply_override(r, key + "=" + flow_text(value));
    tune["runs"].push_back(r);
  }
  const Experiment tune_exp = write_experiment("tune.yaml", tune);
  const RunConfig& r0 = tune_exp.runs[0];
  C.vocab = static_cast<int64_t>(load_corpus(r0.data).tokenizer.size());
  C.seq_len = r0.train.seq_len;
  C.context = r0.eval_seq_len();
  PluginRegistry plugins(r0.plugin_paths);
  MatchSpec spec;
  spec.budget = st_.budget;
  spec.tolerance = st_.tolerance;
  spec.solve = st_.solve;
  spec.seq_len = C.seq_len;
  spec.context = C.context;
  spec.where = st_.path;
  for (const StudyVariant& v : st_.variants) {
    YAML::Node candidate = YAML::Clone(st_.experiment["model"]);
    deep_merge(candidate, v.model);
    MatchResult m = match_budget(st_.experiment["model"], candidate, C.vocab, plugins, spec);
    NA_CHECK(m.within_tolerance, st_.path, "variant '", v.name, "' on ", C.spec.name, ": the closest ", m.key, " (",
             m.value, ") gives ", st_.budget, " ", m.achieved, " = ", m.ratio, " x the baseline's ", m.target,
             ", outside match.tolerance ", st_.tolerance, ": widen the tolerance or solve another size (match.solve)");
    C.base_cost = m.base;
    C.matched.push_back(std::move(m));
  }

  auto add = [&](Job j) {
    jobs_.push_back(std::move(j));
    return jobs_.size() - 1;
  };
  auto train_job = [&](const std::string& yaml, const std::string& run, const std::string& run_dir,
                       std::vector<size_t> deps) {
    Job j;
    j.name = cat(fs::relative(run_dir, out_).string(), " (train)");
    j.deps = std::move(deps);
    j.argv = {"run", path_in(C.dir, yaml), "--only", run, "--out", C.dir, "--resume"};
    j.log = path_in(logs, fs::relative(run_dir, C.dir).string() + ".log");
    j.done = [run_dir] { return finished_run(run_dir); };
    return add(j);
  };

  std::vector<size_t> tune_jobs;
  for (const TunePoint& p : C.points)
    tune_jobs.push_back(train_job("tune.yaml", p.name, path_in(C.dir, "tune/" + p.name), {}));

  // Choosing the baseline's settings writes every other experiment of this corpus.
  Job choose;
  choose.name = C.spec.name + " (choose the baseline's settings)";
  choose.deps = tune_jobs;
  choose.work = [this, &C, experiment, seed_runs, write_experiment] {
    size_t best = 0;
    for (size_t i = 0; i < C.points.size(); ++i) {
      const double v = tuned_val(path_in(C.dir, "tune/" + C.points[i].name));
      NA_CHECK(std::isfinite(v), path_in(C.dir, "tune/" + C.points[i].name), "has no best validation value");
      if (v < tuned_val(path_in(C.dir, "tune/" + C.points[best].name))) best = i;
    }
    auto tuned = [&](const std::string& name, const YAML::Node& model) {
      YAML::Node e = experiment(name, model);
      for (const auto& [key, value] : C.points[best].settings) apply_override(e, key + "=" + flow_text(value));
      seed_runs(e);
      return e;
    };
    const Experiment base = write_experiment("softmax.yaml", tuned("softmax", st_.experiment["model"]));
    for (size_t v = 0; v < st_.variants.size(); ++v) {
      const StudyVariant& var = st_.variants[v];
      write_experiment(var.name + ".yaml", tuned(var.name, C.matched[v].model));
      if (!var.distill) continue;
      YAML::Node e = tuned(var.name + ".distill", C.matched[v].model);
      e["train"]["distill"]["teacher"] = path_in(C.dir, "teacher_train.h5");
      e["train"]["distill"]["alpha"] = st_.distill_alpha;
      e["train"]["distill"]["temperature"] = st_.distill_temperature;
      e["train"]["distill"]["top_k"] = st_.distill_top_k;
      write_experiment(var.name + ".distill.yaml", e);
    }
    (void)base;
  };
  const size_t chosen = add(choose);

  // Per-run follow-ups: cost.json for all; KL against the same seed's baseline and the RNN
  // check for variants; generation speed for all.
  std::vector<size_t> baseline_jobs;
  auto follow_ups = [&](const Run& run, size_t train, const ModelCost& cost) {
    const std::string dir = path_in(out_, run.dir);
    const int64_t tokens = st_.generate_tokens, threads = threads_;
    Job post;
    post.name = run.dir + " (cost, generation speed)";
    post.deps = {train};
    const bool recurrent = run.recurrent;
    post.done = [dir] { return fs::exists(path_in(dir, "cost.json")) && fs::exists(path_in(dir, "generate.json")); };
    post.work = [dir, cost, tokens, threads, recurrent] {
      write_file_atomic(path_in(dir, "cost.json"), cost_json(cost).dump(2) + "\n");
      const Generation gen = time_generation(path_in(dir, "best.h5"), tokens, recurrent, threads);
      json g = {{"generate_tokens", gen.tokens}, {"generate_tokens_per_s", gen.tokens_per_s}, {"mode", recurrent ? "recurrent" : "parallel"},
                {"state_bytes", cost.state_bytes}, {"state_kind", cost.state_kind}, {"threads", threads}};
      write_file_atomic(path_in(dir, "generate.json"), g.dump(2) + "\n");
    };
    add(post);
    if (!run.baseline) {
      Job kl;
      kl.name = run.dir + " (KL vs softmax)";
      kl.deps = {train};
      for (size_t s = 0; s < st_.seeds.size(); ++s)
        if (st_.seeds[s] == run.seed) kl.deps.push_back(baseline_jobs[s]);
      const std::string base_dir = path_in(C.dir, cat("softmax/seed", run.seed));
      kl.argv = {"kl", path_in(base_dir, "preds_test.h5"), path_in(dir, "preds_test.h5"), "--out",
                 path_in(dir, "kl_vs_softmax.h5")};
      kl.log = path_in(logs, fs::relative(dir, C.dir).string() + ".log");
      kl.done = [dir] { return fs::exists(path_in(dir, "kl_vs_softmax.h5")); };
      std::sort(kl.deps.begin(), kl.deps.end());
      add(kl);
    }
    if (run.recurrent) {
      Job rec;
      rec.name = run.dir + " (recurrent test bpc)";
      rec.deps = {train};
      rec.argv = {"eval", path_in(dir, "best.h5"), "--split", "test", "--mode", "recurrent", "--json",
                  "--threads", std::to_string(threads)};
      rec.log = path_in(logs, fs::relative(dir, C.dir).string() + ".log");
      rec.out = path_in(dir, ".recurrent_eval.json");
      rec.done = [dir] { return fs::exists(path_in(dir, "recurrent.json")); };
      rec.after = [dir, cost] {
        const json e = read_json(path_in(dir, ".recurrent_eval.json"));
        const RunSummary s = read_summary(path_in(dir, "summary.json"));
        json r = {{"test_bpc_parallel", s.test_bits}, {"test_bpc_recurrent", e.at("bpc")},
                  {"abs_diff", std::fabs(s.test_bits - e.at("bpc").get<double>())}, {"tokens", e.at("tokens")},
                  {"state_bytes", cost.state_bytes}, {"eval_seconds", e.at("seconds")}};
        write_file_atomic(path_in(dir, "recurrent.json"), r.dump(2) + "\n");
        fs::remove(path_in(dir, ".recurrent_eval.json"));
      };
      add(rec);
    }
  };
  auto add_run = [&](Run r) {
    runs_.push_back(std::move(r));
    return runs_.back();
  };

  for (uint64_t seed : st_.seeds) {
    Run r;
    r.corpus = C.spec.name;
    r.variant = r.label = r.experiment = "softmax";
    r.baseline = true;
    r.seed = seed;
    r.dir = cat(C.spec.name, "/softmax/seed", seed);
    r.recurrent = C.base_cost.state_kind == "fast_weights";
    baseline_jobs.push_back(train_job("softmax.yaml", cat("seed", seed), path_in(out_, r.dir), {chosen}));
    add_run(r);
  }
  for (size_t s = 0; s < st_.seeds.size(); ++s) follow_ups(runs_[runs_.size() - st_.seeds.size() + s],
                                                           baseline_jobs[s], C.base_cost);
  Job teacher;
  teacher.name = C.spec.name + " teacher predictions (train split)";
  teacher.deps = {baseline_jobs[0]};
  const std::string teacher_file = path_in(C.dir, "teacher_train.h5");
  teacher.argv = {"eval", path_in(C.dir, cat("softmax/seed", st_.seeds[0], "/best.h5")), "--split", "train",
                  "--seq-len", std::to_string(C.seq_len), "--dump", teacher_file, "--top-k",
                  std::to_string(st_.distill_top_k), "--threads", std::to_string(threads_)};
  teacher.log = path_in(logs, "teacher.log");
  teacher.done = [teacher_file] { return fs::exists(teacher_file); };
  size_t teacher_job = SIZE_MAX;
  bool any_distill = false;
  for (const StudyVariant& v : st_.variants) any_distill |= v.distill;
  if (any_distill) teacher_job = add(teacher);

  for (size_t v = 0; v < st_.variants.size(); ++v) {
    const StudyVariant& var = st_.variants[v];
    for (bool distilled : {false, true}) {
      if (distilled && !var.distill) continue;
      const std::string exp = var.name + (distilled ? ".distill" : "");
      for (uint64_t seed : st_.seeds) {
        Run r;
        r.corpus = C.spec.name;
        r.variant = var.name;
        r.label = var.name + (distilled ? " +distill" : "");
        r.experiment = exp;
        r.distilled = distilled;
        r.seed = seed;
        r.dir = cat(C.spec.name, "/", exp, "/seed", seed);
        r.recurrent = C.matched[v].cost.state_kind == "fast_weights";
        r.override_text = yaml_text(var.model);
        std::vector<size_t> deps = {chosen};
        if (distilled) deps.push_back(teacher_job);
        const size_t train = train_job(exp + ".yaml", cat("seed", seed), path_in(out_, r.dir), deps);
        follow_ups(add_run(r), train, C.matched[v].cost);
      }
    }
  }
  corpora_.push_back(std::move(corpus));
}

void StudyPlan::write_manifest() const {
  json m = {{"study", st_.name}, {"unit", "bpc"}, {"quick", st_.quick}, {"command", command_},
            {"commit", NANOATTN_GIT_COMMIT}, {"nanoattn_version", NANOATTN_VERSION}, {"study_file", st_.path},
            {"seeds", st_.seeds}, {"match", {{"budget", st_.budget}, {"tolerance", st_.tolerance}, {"solve", st_.solve}}},
            {"distill", {{"alpha", st_.distill_alpha}, {"temperature", st_.distill_temperature},
                         {"top_k", st_.distill_top_k}}}};
  m["corpora"] = json::array();
  for (const auto& C : corpora_) {
    json c = {{"name", C->spec.name}, {"vocab", C->vocab}, {"seq_len", C->seq_len}, {"context", C->context},
              {"baseline_params", C->base_cost.params.total}};
    c["tuning"] = json::array();
    double best = NAN;
    for (const TunePoint& p : C->points) {
      const std::string dir = cat(C->spec.name, "/tune/", p.name);
      const double v = tuned_val(path_in(out_, dir));
      json t = {{"dir", dir}, {"name", p.name}, {"status", std::isfinite(v) ? "done" : "pending"},
                {"best_val_bpc", std::isfinite(v) ? json(v) : json(nullptr)}};
      json settings = json::object();
      for (const auto& [key, value] : p.settings) {
        settings[key] = YAML::Load(flow_text(value)).as<double>();
        if (key == "train.lr") t["lr"] = settings[key];
        if (key == "model.dropout.p") t["dropout"] = settings[key];
      }
      t["settings"] = settings;
      if (std::isfinite(v) && !(best <= v)) {
        best = v;
        c["chosen"] = settings;
        c["chosen"]["name"] = p.name;
        for (const char* k : {"lr", "dropout"})
          if (t.contains(k)) c["chosen"][k] = t[k];
      }
      c["tuning"].push_back(t);
    }
    c["matched"] = json::array();
    for (size_t v = 0; v < st_.variants.size(); ++v) {
      const MatchResult& r = C->matched[v];
      c["matched"].push_back({{"variant", st_.variants[v].name}, {"key", r.key}, {"value", r.value},
                              {"params", r.cost.params.total}, {"ratio", r.ratio}});
    }
    m["corpora"].push_back(c);
  }
  m["runs"] = json::array();
  for (const Run& r : runs_)
    m["runs"].push_back({{"corpus", r.corpus}, {"variant", r.variant}, {"label", r.label}, {"baseline", r.baseline},
                         {"distilled", r.distilled}, {"seed", r.seed}, {"dir", r.dir}, {"recurrent", r.recurrent},
                         {"override", r.override_text},
                         {"status", finished_run(path_in(out_, r.dir)) ? "done" : "pending"}});
  write_file_atomic(path_in(out_, "study.json"), m.dump(2) + "\n");
}

std::string StudyPlan::match_table() const {
  std::ostringstream o;
  for (const auto& C : corpora_) {
    o << C->spec.name << " (vocab " << C->vocab << ", baseline softmax: " << C->base_cost.params.total
      << " params)\n";
    for (size_t v = 0; v < st_.variants.size(); ++v) {
      const MatchResult& r = C->matched[v];
      o << "  " << std::left << std::setw(14) << st_.variants[v].name << std::right << std::setw(10)
        << r.cost.params.total << " params (" << std::fixed << std::setprecision(4) << r.ratio << "x), "
        << r.key << " = " << r.value << ", state " << r.cost.state_bytes << " bytes ("
        << state_label(r.cost.state_kind) << ")\n";
    }
  }
  return o.str();
}

}  // namespace na
