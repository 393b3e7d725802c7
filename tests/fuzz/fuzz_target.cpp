// A libFuzzer target: NANOATTN_FUZZ_ENTRY (set by CMake) is one of fuzz_entry.h's functions.
#include "fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  na::fuzz::NANOATTN_FUZZ_ENTRY(data, size);
  return 0;
}
