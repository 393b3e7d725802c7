#include "study/slurm_script.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "nanoattn/error.h"
#include "util/files.h"

namespace na {
namespace fs = std::filesystem;

namespace {

// 'text' for bash, with any ' inside closed and reopened.
std::string quoted(const std::string& text) {
  std::string q = "'";
  for (char c : text) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

void write_script(const std::string& path, const std::string& text) {
  write_file_atomic(path, text);
  NA_CHECK(chmod(path.c_str(), 0755) == 0, path, "cannot make it executable");
}

}  // namespace

std::vector<std::vector<size_t>> job_waves(const std::vector<Job>& jobs) {
  std::vector<size_t> wave(jobs.size(), 0);
  size_t last = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (jobs[j].last) continue;
    for (size_t d : jobs[j].deps) {
      NA_CHECK(d < j, jobs[j].name, "depends on a later job (a bug)");
      wave[j] = std::max(wave[j], wave[d] + 1);
    }
    last = std::max(last, wave[j]);
  }
  std::vector<std::vector<size_t>> waves(last + 1);
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (!jobs[j].last) waves[wave[j]].push_back(j);
  }
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (jobs[j].last) waves.push_back({j});  // after all the others
  }
  return waves;
}

std::string write_slurm_scripts(const std::vector<Job>& jobs, const std::string& study_name,
                                const std::string& out, const std::string& program,
                                const std::vector<std::string>& study_command) {
  const std::string dir = (fs::path(out) / "slurm").string();
  ensure_folder(dir + "/logs", "--out");
  const auto waves = job_waves(jobs);

  std::string task = "#!/usr/bin/env bash\n# One job of study " + study_name +
                     ": Slurm array task $SLURM_ARRAY_TASK_ID of wave $NANOATTN_WAVE (submit.sh sets it).\n"
                     "# Written by `nanoattn study --emit slurm`; it uses the task's CPUs as its threads.\n"
                     "set -euo pipefail\nexec " +
                     quoted(program) + " study";
  for (const std::string& arg : study_command) task += " " + quoted(arg);
  task += " --wave \"$NANOATTN_WAVE\" --task \"$SLURM_ARRAY_TASK_ID\"\n";

  std::string submit =
      "#!/usr/bin/env bash\n"
      "# Submits study " + study_name + " to Slurm: one job array per wave of jobs, each wave starting when the\n"
      "# previous one succeeded (the report: when it ended). Written by `nanoattn study --emit slurm`.\n"
      "# Options for every array (partition, time limit, account, CPUs) come from SBATCH_OPTIONS, e.g.\n"
      "#   SBATCH_OPTIONS='--partition=cpu --time=08:00:00 --cpus-per-task=8' bash " + dir + "/submit.sh\n"
      "# After a failure, fix the cause and submit again: jobs whose outputs exist are skipped.\n"
      "set -euo pipefail\n"
      "here=" + quoted(dir) + "\n"
      "read -r -a options <<< \"--cpus-per-task=4 ${SBATCH_OPTIONS:-}\"\n"
      "previous=\n"
      "submit() {  # wave, tasks, dependency kind, what\n"
      "  local id\n"
      "  id=$(sbatch --parsable \"${options[@]}\" --job-name=" + quoted(study_name) + "-w$1 --array=0-$(($2 - 1)) \\\n"
      "    --output=\"$here/logs/w$1-%a.out\" --export=ALL,NANOATTN_WAVE=$1 ${previous:+--dependency=$3:$previous} \\\n"
      "    \"$here/task.sh\")\n"
      "  previous=${id%%;*}\n"
      "  echo \"wave $1: $2 job(s) ($4), Slurm job $previous\"\n"
      "}\n";
  for (size_t w = 0; w < waves.size(); ++w) {
    const Job& first = jobs[waves[w].front()];
    const bool report = first.last;
    std::string what = first.name;
    if (waves[w].size() > 1) what += cat(" and ", waves[w].size() - 1, " more");
    std::replace(what.begin(), what.end(), '\'', ' ');
    submit += cat("submit ", w, " ", waves[w].size(), report ? " afterany " : " afterok ", quoted(what), "\n");
  }
  write_script(dir + "/task.sh", task);
  write_script(dir + "/submit.sh", submit);
  return cat("wrote ", dir, "/submit.sh: ", waves.size(), " Slurm job arrays, ", jobs.size(),
             " jobs. Submit from a login node that sees ", out, ":\n  SBATCH_OPTIONS='--partition=... --time=...' bash ",
             dir, "/submit.sh\n");
}

}  // namespace na
