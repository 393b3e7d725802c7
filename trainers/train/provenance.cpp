#include "train/provenance.h"

#include <unistd.h>

#include <ctime>

#include "dist/comm.h"
#include "git_commit.h"
#include "nanoattn/blas.h"
#include "nanoattn/version.h"

namespace na {

namespace {

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "unknown";
  return buf;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

Provenance current_provenance() {
  return {NANOATTN_VERSION, NANOATTN_GIT_COMMIT, host_name(), utc_now(), blas_kernels(), comm().size()};
}

YAML::Node provenance_yaml(const Provenance& p) {
  YAML::Node n(YAML::NodeType::Map);
  n["nanoattn_version"] = p.nanoattn_version;
  n["git_commit"] = p.git_commit;
  n["host"] = p.host;
  n["started_utc"] = p.started_utc;
  n["blas_kernels"] = p.blas_kernels;
  n["ranks"] = p.ranks;
  return n;
}

nlohmann::json provenance_json(const Provenance& p) {
  return {{"nanoattn_version", p.nanoattn_version},
          {"git_commit", p.git_commit},
          {"host", p.host},
          {"started_utc", p.started_utc},
          {"blas_kernels", p.blas_kernels},
          {"ranks", p.ranks}};
}

}  // namespace na
