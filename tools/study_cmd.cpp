// `nanoattn study study.yaml`: the whole comparison of a study file (trainers/study/
// study_config.h), resumable: run the same command again after a stop or a kill -9 and it goes
// on from the last checkpoint of each unfinished run, without rerunning finished ones.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "nanoattn/error.h"
#include "nanoattn/stop.h"
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

void run_study(const StudyArgs& a) {
  StudyConfig st = load_study(a.file, a.quick, a.corpus, a.sets);
  if (a.jobs > 0) st.jobs = a.jobs;
  const std::string out = a.out.empty() ? (fs::path("runs") / (st.name + (a.quick ? "-quick" : ""))).string() : a.out;
  std::string command = "nanoattn study " + a.file;
  if (a.quick) command += " --quick";
  if (!a.corpus.empty()) command += " --corpus " + a.corpus;
  for (const std::string& s : a.sets) command += " --set " + s;
  if (!a.out.empty()) command += " --out " + a.out;
  fs::create_directories(out);
  FolderLock lock(out, out, "the study");  // one study process per folder; each run has its own lock too
  std::fprintf(stderr, "study %s: planning (corpora, vocabularies, matched budgets) ...\n", st.name.c_str());
  StudyPlan plan(st, out, command);
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
  cmd->callback([a] { run_study(*a); });
}

}  // namespace na::cli
