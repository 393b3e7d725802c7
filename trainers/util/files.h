// Writing files so that a crash or kill -9 never leaves a half-written file under the final
// name: write a temporary file in the same folder, fsync it, rename it over the target, fsync
// the folder.
#pragma once
#include <string>

namespace na {

// "<dir>/.<name>.tmp-<pid>": the temporary name used for `path`.
std::string temp_path_for(const std::string& path);
// fsync(path's file), rename(tmp, path), fsync(path's folder). Throws na::Error naming `path`.
void commit_file(const std::string& tmp, const std::string& path);
// Writes `content` to `path` atomically (temp_path_for + commit_file).
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace na
