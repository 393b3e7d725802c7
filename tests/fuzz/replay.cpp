// fuzz_replay HARNESS PATH...: feeds every file (folders: every file in them, sorted) to a fuzz
// harness's entry function, as libFuzzer would, and fails on anything but acceptance or an
// na::Error. The normal suite runs it on tests/fuzz/regressions/ (built with any compiler).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz_entry.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  const std::string harness = argc > 1 ? argv[1] : "";
  void (*entry)(const uint8_t*, size_t) = harness == "experiment" ? na::fuzz::experiment_input
                                          : harness == "set"      ? na::fuzz::set_input
                                                                  : nullptr;
  if (!entry || argc < 3) {
    std::fprintf(stderr, "usage: fuzz_replay experiment|set FILE_OR_FOLDER...\n");
    return 2;
  }
  std::vector<fs::path> files;
  for (int i = 2; i < argc; ++i) {
    if (fs::is_directory(argv[i])) {
      std::vector<fs::path> in_dir;
      for (const auto& e : fs::directory_iterator(argv[i]))
        if (e.is_regular_file()) in_dir.push_back(e.path());
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else if (fs::is_regular_file(argv[i])) {
      files.emplace_back(argv[i]);
    } else {
      std::fprintf(stderr, "FAIL: %s: no such file or folder\n", argv[i]);
      return 1;
    }
  }
  int failed = 0;
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string bytes = ss.str();
    try {
      entry(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      std::printf("ok  %s\n", f.c_str());
    } catch (const std::exception& e) {
      std::printf("FAIL %s: an exception other than na::Error escaped: %s\n", f.c_str(), e.what());
      ++failed;
    } catch (...) {
      std::printf("FAIL %s: a non-std exception escaped\n", f.c_str());
      ++failed;
    }
  }
  std::printf("%s: %zu inputs replayed, %d failed\n", harness.c_str(), files.size(), failed);
  return failed || files.empty() ? 1 : 0;
}
