#include "util/folder_lock.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nanoattn/error.h"

namespace na {
namespace {

std::string folder_of(const std::string& file) {
  const std::filesystem::path dir = std::filesystem::path(file).parent_path();
  return dir.empty() ? "." : dir.string();
}

bool same_file(int fd, const std::string& path) {
  struct stat a {}, b {};
  return ::fstat(fd, &a) == 0 && ::stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// The PID the holder wrote, or "" (it may not have written it yet).
std::string holder_pid(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string pid(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.find_first_not_of("0123456789") == std::string::npos ? pid : "";
}

[[noreturn]] void cannot_open(const std::string& folder, const std::string& target, const std::string& what, int err) {
  const std::string head = cat("cannot write ", what, ": folder ", folder);
  if (err == ENOENT) throw Error(target, head + " does not exist: create it or choose another path");
  if (err == ENOTDIR) throw Error(target, head + " is not a folder: choose another path");
  if (err == EROFS || err == EACCES || err == EPERM)
    throw Error(target, cat(head, " is not writable (", std::strerror(err), "): choose a writable folder"));
  throw Error(target, cat(head, ": cannot create its lock file ", FolderLock::kFileName, " (", std::strerror(err),
                          ")"));
}

}  // namespace

FolderLock::FolderLock(const std::string& folder, const std::string& target, const std::string& what)
    : path_(file_in(folder)) {
  // The previous holder removes the file as it releases: if that happened between our open and
  // our flock, we hold a lock on a removed file, so open the new one and lock again.
  for (;;) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd_ < 0) cannot_open(folder, target, what, errno);
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      const std::string pid = err == EWOULDBLOCK ? holder_pid(fd_) : "";
      ::close(std::exchange(fd_, -1));
      if (err != EWOULDBLOCK) throw Error(target, cat("cannot lock ", path_, ": ", std::strerror(err)));
      const std::string who = pid.empty() ? "another nanoattn process" : "another nanoattn process (pid " + pid + ")";
      throw Error(target, cat("folder ", folder, " is in use by ", who, ", which holds its lock ", path_,
                              ": wait for it to finish", pid.empty() ? "" : ", or stop it (kill " + pid + ")",
                              ", or write elsewhere; two processes writing the same folder would mix their files"));
    }
    if (same_file(fd_, path_)) break;
    ::close(std::exchange(fd_, -1));
  }
  // Informative only (the kernel's lock is what counts), so a full disk does not stop us here.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, pid.data(), pid.size(), 0);
}

FolderLock FolderLock::for_file(const std::string& file, const std::string& what) {
  return FolderLock(folder_of(file), file, what);
}

std::string FolderLock::file_in(const std::string& folder) {
  return (std::filesystem::path(folder) / kFileName).string();
}

std::string FolderLock::file_next_to(const std::string& file) { return file_in(folder_of(file)); }

FolderLock::FolderLock(FolderLock&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

FolderLock::~FolderLock() {
  if (fd_ < 0) return;
  // Unlinked while still held, and only if it is still our file: whoever opens the name next
  // gets a new file, never one that someone else holds.
  if (same_file(fd_, path_)) ::unlink(path_.c_str());
  ::close(fd_);
}

}  // namespace na
