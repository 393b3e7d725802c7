// Where and with what a run was trained: nanoattn's version and git commit, the host, the start
// time, the OpenBLAS kernels and the MPI rank count. Recorded in config.yaml (under `provenance:`, which resume and
// checkpoint comparisons ignore: a run may resume on another host) and in summary.json.
#pragma once
#include <string>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

namespace na {

struct Provenance {
  std::string nanoattn_version, git_commit, host, started_utc, blas_kernels;
  int ranks = 1;  // the processes that trained the session (mpirun -np)
};

// This process, started now (started_utc: "2024-05-01T12:34:56Z").
Provenance current_provenance();

YAML::Node provenance_yaml(const Provenance& p);
nlohmann::json provenance_json(const Provenance& p);

// The key config.yaml holds the provenance under.
inline constexpr const char* kProvenanceKey = "provenance";

}  // namespace na
