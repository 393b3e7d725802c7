#include "util/files.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <unistd.h>

#include "nanoattn/error.h"

namespace na {
namespace fs = std::filesystem;

namespace {
void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  NA_CHECK(fd >= 0, path, "cannot open for fsync: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  NA_CHECK(rc == 0, path, "fsync failed: ", std::strerror(err));
}
}  // namespace

std::string temp_path_for(const std::string& path) {
  const fs::path p(path);
  return (p.parent_path() / ("." + p.filename().string() + ".tmp-" + std::to_string(::getpid()))).string();
}

void commit_file(const std::string& tmp, const std::string& path) {
  try {
    fsync_path(tmp, O_RDONLY);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error(path, cat("cannot rename ", tmp, " over it: ", std::strerror(err)));
  }
  const fs::path dir = fs::path(path).parent_path();
  fsync_path(dir.empty() ? "." : dir.string(), O_RDONLY | O_DIRECTORY);
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = temp_path_for(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  NA_CHECK(f, path, "cannot write (", std::strerror(errno), "): check that the folder exists and is writable");
  const bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) {
    std::remove(tmp.c_str());
    throw Error(path, "write failed (disk full?)");
  }
  commit_file(tmp, path);
}

}  // namespace na
