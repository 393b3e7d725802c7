// One writer per folder: `nanoattn run` holds the lock of each run folder it writes for its
// whole life, `eval --dump` and `kl --out` the lock of the folder they write into, so two
// processes never interleave their records or replace each other's files.
//
// The lock is flock(LOCK_EX) on "<folder>/.lock", a file holding the owner's PID. The kernel
// releases it when the process ends, however it ends, so a lock left by a killed process never
// blocks: the PID in the file is only there to name the owner in the message. The file is
// removed on release. flock locks belong to an open file: a second FolderLock on the same
// folder in the same process is refused too.
#pragma once
#include <string>

namespace na {

class FolderLock {
 public:
  static constexpr const char* kFileName = ".lock";

  // Takes the lock of `folder` (which must exist) or throws na::Error with context `target`
  // (the path the user gave: a run folder, --dump, --out) that names the folder, the PID
  // holding it and what to do. `what` names the files for the other errors ("the dump").
  FolderLock(const std::string& folder, const std::string& target, const std::string& what);
  // The lock of the folder `file` will be written into.
  static FolderLock for_file(const std::string& file, const std::string& what);
  // "<folder>/.lock", and that of the folder `file` is in: outputs too (for same-file checks).
  static std::string file_in(const std::string& folder);
  static std::string file_next_to(const std::string& file);
  FolderLock(FolderLock&& other) noexcept;
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;
  FolderLock& operator=(FolderLock&&) = delete;
  ~FolderLock();  // removes the lock file, then releases

  const std::string& path() const { return path_; }  // "<folder>/.lock"

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace na
