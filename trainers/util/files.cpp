#include "util/files.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
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

std::string folder_of(const std::string& path) {
  const fs::path dir = fs::path(path).parent_path();
  return dir.empty() ? "." : dir.string();
}
}  // namespace

std::string temp_path_for(const std::string& path) {
  const fs::path p(path);
  return (p.parent_path() / cat(".", p.filename().string(), ".tmp-", ::getpid())).string();
}

bool is_temp_name(const std::string& name) {
  const size_t at = name.rfind(".tmp-");
  if (name.empty() || name[0] != '.' || at == std::string::npos || at + 5 == name.size()) return false;
  return name.find_first_not_of("0123456789", at + 5) == std::string::npos;
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
  fsync_path(folder_of(path), O_RDONLY | O_DIRECTORY);
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = temp_path_for(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) {
    const int err = errno;
    throw Error(path, cat("cannot write (", std::strerror(err), "): check that the folder exists and is writable",
                          space_hint(std::strerror(err), path, content.size())));
  }
  const bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  int err = errno;
  const bool closed = std::fclose(f) == 0;
  if (!closed) err = errno;
  if (!ok || !closed) {
    std::remove(tmp.c_str());
    throw Error(path, cat("not written, any previous file there is untouched (", std::strerror(err), ")",
                          space_hint(std::strerror(err), path, content.size())));
  }
  commit_file(tmp, path);
}

void refuse_overwriting_inputs(const std::vector<std::string>& outputs, const std::vector<std::string>& inputs,
                               const std::string& fix) {
  for (const std::string& out : outputs) {
    struct stat o {};
    if (out.empty() || ::stat(out.c_str(), &o) != 0) continue;  // not there yet: nothing to destroy
    for (const std::string& in : inputs) {
      struct stat i {};
      if (in.empty() || ::stat(in.c_str(), &i) != 0) continue;
      if (o.st_dev == i.st_dev && o.st_ino == i.st_ino)
        throw Error(out, cat("is the same file as the input ", in, out == in ? "" : " (the same device and inode)",
                             ": writing it would destroy that input, so nothing was done: ", fix));
    }
  }
}

void ensure_folder(const std::string& dir, const std::string& option) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return;
  // The deepest part of the path that exists says why it cannot be a folder.
  fs::path p = fs::path(dir);
  while (!p.empty() && !fs::exists(p, ec)) p = p.parent_path();
  if (!p.empty() && !fs::is_directory(p, ec))
    throw Error(dir, cat(p == fs::path(dir) ? "is a file, not a folder" : cat(p.string(), " is a file, not a folder"),
                         ": give ", option, " a folder (or a path where one can be made)"));
  fs::create_directories(dir, ec);
  if (ec)
    throw Error(dir, cat("cannot create this folder (", ec.message(), "): give ", option,
                         " a folder on a writable file system"));
}

std::string bytes_text(uint64_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  if (u == 0) return cat(bytes, " bytes");
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return cat(buf, " (", bytes, " bytes)");
}

std::string space_hint(const std::string& reason, const std::string& path, uint64_t needed) {
  const bool full = reason.find(std::strerror(ENOSPC)) != std::string::npos ||
                    reason.find(std::strerror(EDQUOT)) != std::string::npos;
  if (!full) return "";
  const std::string dir = folder_of(path);
  struct statvfs s {};
  const std::string free = ::statvfs(dir.c_str(), &s) == 0
                               ? bytes_text(static_cast<uint64_t>(s.f_bavail) * static_cast<uint64_t>(s.f_frsize))
                               : std::string("an unknown amount");
  return cat("; it needs ", needed > 0 ? "at least " + bytes_text(needed) : std::string("more space"),
             ", the file system holding ", dir, " has ", free, " free: free some space or write elsewhere");
}

}  // namespace na
