// Sizes checked before they are allocated: a model, a batch or an evaluation that cannot fit
// is refused with the estimate next to the machine's memory, instead of std::bad_alloc or the
// kernel's OOM killer minutes later.
#pragma once
#include <string>

namespace na {

// Physical memory, or the cgroup's limit when that is lower (a container, a Slurm job).
double machine_memory_bytes();
// "3.2 GiB", "512.0 MiB".
std::string format_bytes(double bytes);
// Throws Error(context, "<what> needs about X; this machine has Y: <fix>") when bytes do not fit.
void check_fits_in_memory(double bytes, const std::string& context, const std::string& what, const std::string& fix);

}  // namespace na
