// `nanoattn study study.yaml`: the whole comparison of a study file (trainers/study/
// study_config.h), resumable: run the same command again after a stop or a kill -9 and it goes
// on from the last checkpoint of each unfinished run, without rerunning finished ones.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "commands.h"
#include "nanoattn/error.h"
#include "nanoattn/stop.h"
#include "study/slurm_script.h"
#include "study/study_plan.h"
#include "util/folder_lock.h"

namespace na::cli {
namespace fs = std::filesystem;
namespace {

struct StudyArgs {
  std::string file, out, corpus;
  std::vector<std::string> sets;
  bool quick = false, dry_run = false;
  int64_t jobs = 0;
  std::string emit;                  // "slurm": write the Slurm scripts instead of running
  int64_t wave = -1, task = -1;      // run one job (a task of an emitted Slurm array)
};

std::string duration(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, int(s) / 60 % 60);
  return buf;
}

std::string program_path() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  NA_CHECK(!ec, "nanoattn study", "cannot find its own executable (/proc/self/exe): ", ec.message());
  return self.string();
}

// One job of the plan: a task of an emitted Slurm array. Its wave's array starts only after the
// previous wave's succeeded, so its dependencies are done; it checks that anyway.
void run_task(StudyPlan& plan, int64_t wave, int64_t task) {
  std::vector<Job>& jobs = plan.jobs();
  const auto waves = job_waves(jobs);
  NA_CHECK(wave >= 0 && static_cast<size_t>(wave) < waves.size() && task >= 0 &&
               static_cast<size_t>(task) < waves[wave].size(),
           plan.out(), "--wave ", wave, " --task ", task, ": the study has ", waves.size(), " waves",
           static_cast<size_t>(wave) < waves.size() ? cat(", wave ", wave, " has ", waves[wave].size(), " jobs") : "",
           ": emit the Slurm scripts again (--emit slurm) if the study file changed");
  Job job = jobs[waves[wave][task]];
  for (size_t d : job.deps)
    NA_CHECK(!jobs[d].done || jobs[d].done(), job.name, "needs ", jobs[d].name, " first, which has not finished: ",
             "an earlier wave failed (see ", plan.out(), "/slurm/logs); fix it and submit again");
  const bool report = job.last;
  job.deps.clear();
  job.last = false;
  if (report) plan.write_manifest();  // the report reads it; other tasks leave it alone (no races)
  std::vector<Job> one{job};
  const auto problems = run_jobs(one, 1, program_path(), [&](const JobEvent& e) {
    const char* what = e.kind == JobEvent::Started    ? "start"
                       : e.kind == JobEvent::Skipped  ? "had  "
                       : e.kind == JobEvent::Finished ? "done "
                                                      : "FAIL ";
    std::fprintf(stderr, "%s %s%s\n", what, job.name.c_str(), e.message.empty() ? "" : (": " + e.message).c_str());
  });
  if (report) plan.write_manifest();
  NA_CHECK(problems.empty(), job.name, "did not complete: ", problems.front().message);
}

void run_study(const StudyArgs& a) {
  StudyConfig st = load_study(a.file, a.quick, a.corpus, a.sets);
  const bool task = a.wave >= 0 || a.task >= 0;
  NA_CHECK(!task || (a.wave >= 0 && a.task >= 0), "nanoattn study", "--wave and --task go together (the emitted ",
           "Slurm script passes both)");
  NA_CHECK(!task || a.emit.empty(), "nanoattn study", "--emit and --wave/--task do not go together");
  NA_CHECK(a.emit.empty() || a.emit == "slurm", "nanoattn study", "--emit ", a.emit, ": the only target is slurm");
  if (a.jobs > 0) st.jobs = a.jobs;
  int64_t cores = 0;  // this machine's
  if (task) {  // one job per task, on the CPUs Slurm gave it
    st.jobs = 1;
    if (const char* n = std::getenv("SLURM_CPUS_PER_TASK")) cores = std::max(1, std::atoi(n));
  }
  const std::string out = a.out.empty() ? (fs::path("runs") / (st.name + (a.quick ? "-quick" : ""))).string() : a.out;
  // The arguments that rebuild the same plan; absolute paths for tasks that run elsewhere.
  auto study_args = [&](bool absolute) {
    auto path = [&](const std::string& p) { return absolute ? fs::absolute(p).lexically_normal().string() : p; };
    std::vector<std::string> args = {path(a.file)};
    if (a.quick) args.push_back("--quick");
    if (!a.corpus.empty()) args.insert(args.end(), {"--corpus", path(a.corpus)});
    for (const std::string& s : a.sets) args.insert(args.end(), {"--set", s});
    if (!a.out.empty() || absolute) args.insert(args.end(), {"--out", path(out)});
    return args;
  };
  std::string command = "nanoattn study";
  for (const std::string& arg : study_args(false)) command += " " + arg;
  fs::create_directories(out);
  std::optional<FolderLock> lock;  // one study process per folder; each run has its own lock too
  if (!task) lock.emplace(out, out, "the study");
  if (!task) std::fprintf(stderr, "study %s: planning (corpora, vocabularies, matched budgets) ...\n", st.name.c_str());
  StudyPlan plan(st, out, command, cores);
  if (task) return run_task(plan, a.wave, a.task);
  if (!a.emit.empty()) {
    std::printf("%s", write_slurm_scripts(plan.jobs(), st.name, plan.out(), program_path(), study_args(true)).c_str());
    return;
  }
  std::fputs(plan.match_table().c_str(), stderr);
  plan.write_manifest();
  std::vector<Job>& jobs = plan.jobs();
  if (a.dry_run) {
    for (const Job& j : jobs) {
      const bool done = j.done && j.done();
      std::printf("%s %s\n", done ? "done   " : "to run ", j.name.c_str());
    }
    return;
  }
  size_t finished = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  const auto problems = run_jobs(jobs, static_cast<size_t>(st.jobs), program_path(), [&](const JobEvent& e) {
    const Job& j = jobs[e.job];
    if (e.kind == JobEvent::Started) {
      std::fprintf(stderr, "[%zu/%zu %s] start %s\n", finished, jobs.size(), duration(elapsed()).c_str(), j.name.c_str());
      return;
    }
    ++finished;
    const char* what = e.kind == JobEvent::Finished ? "done " : e.kind == JobEvent::Skipped ? "had  " : "FAIL ";
    if (e.kind != JobEvent::Skipped || std::getenv("NANOATTN_STUDY_VERBOSE"))
      std::fprintf(stderr, "[%zu/%zu %s] %s %s%s%s\n", finished, jobs.size(), duration(elapsed()).c_str(), what,
                   j.name.c_str(), e.kind == JobEvent::Finished ? cat(" in ", duration(e.seconds)).c_str() : "",
                   e.message.empty() ? "" : (": " + e.message).c_str());
    if (e.kind != JobEvent::Started) plan.write_manifest();
  });
  plan.write_manifest();
  if (!problems.empty()) {
    std::string list;
    for (const JobEvent& e : problems) list += cat("\n  ", jobs[e.job].name, ": ", e.message);
    throw Error(out, cat(problems.size(), " job(s) did not complete:", list,
                         "\nfix the cause and run the same command again: finished runs are kept"));
  }
  std::fprintf(stderr, "study %s: complete in %s; report: %s/report.md\n", st.name.c_str(), duration(elapsed()).c_str(),
               out.c_str());
}

}  // namespace

void add_study_command(CLI::App& app) {
  auto a = std::make_shared<StudyArgs>();
  auto* cmd = app.add_subcommand("study", "Run a whole study (tuned softmax baseline, matched variants, distillation, "
                                          "seeds, KL, RNN check, report); run it again to resume");
  cmd->add_option("study", a->file, "study YAML file (e.g. configs/study/rfr.yaml)")->required();
  cmd->add_option("--out", a->out, "output folder (default runs/<name>, runs/<name>-quick with --quick)");
  cmd->add_flag("--quick", a->quick, "the study file's reduced version (its quick: section)");
  cmd->add_option("--corpus", a->corpus, "replace the study's corpora with this text file");
  cmd->add_option("--set", a->sets, "override an experiment setting of every run, e.g. --set train.steps=100");
  cmd->add_option("--jobs", a->jobs, "runs at a time (default: the study file's jobs); the numbers do not depend on it")
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--dry-run", a->dry_run, "plan and print the jobs (done or to run) without running any");
  cmd->add_option("--emit", a->emit, "write a script that runs the study on a cluster instead: slurm "
                                     "(OUT/slurm/submit.sh: one job array per wave of jobs)")
      ->check(CLI::IsMember({"slurm"}));
  cmd->add_option("--wave", a->wave, "with --task: run that one job of the emitted Slurm scripts (they pass both)");
  cmd->add_option("--task", a->task, "see --wave");
  cmd->callback([a] { run_study(*a); });
}

}  // namespace na::cli
