#include "nanoattn/memory.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "nanoattn/error.h"

namespace na {

double machine_memory_bytes() {
  double bytes = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  std::ifstream cgroup("/sys/fs/cgroup/memory.max");  // "max" when unlimited
  double limit = 0;
  if (cgroup >> limit && limit > 0 && limit < bytes) bytes = limit;
  return bytes;
}

std::string format_bytes(double bytes) {
  char buf[32];
  if (bytes >= 1024.0 * 1024 * 1024) std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / (1024.0 * 1024 * 1024));
  else std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024));
  return buf;
}

void check_fits_in_memory(double bytes, const std::string& context, const std::string& what, const std::string& fix) {
  const double have = machine_memory_bytes();
  NA_CHECK(bytes <= have, context, what, " needs about ", format_bytes(bytes), "; this machine has ",
           format_bytes(have), ": ", fix);
}

}  // namespace na
