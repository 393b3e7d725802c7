// `nanoattn study ... --emit slurm`: a study as Slurm job arrays, for a cluster.
//
// A job's wave is one more than the latest wave of its dependencies (the report, which runs
// after everything, has the last wave of its own). Each wave is one job array that starts once
// the previous wave's array succeeded (the report's: once it ended, whatever failed), and each
// array task runs one job with `nanoattn study ... --wave W --task I`, which skips it if its
// outputs exist: submitting again after a failure reruns only what did not finish.
#pragma once
#include <string>
#include <vector>

#include "study/job_pool.h"

namespace na {

// The jobs of each wave, in list order.
std::vector<std::vector<size_t>> job_waves(const std::vector<Job>& jobs);

// Writes OUT/slurm/task.sh (one array task) and OUT/slurm/submit.sh (submits every wave) and
// returns how to use them. `study_command` is the argument list that rebuilds the same plan
// ("nanoattn" excluded, each argument one element); `program` is the nanoattn executable.
std::string write_slurm_scripts(const std::vector<Job>& jobs, const std::string& study_name,
                                const std::string& out, const std::string& program,
                                const std::vector<std::string>& study_command);

}  // namespace na
