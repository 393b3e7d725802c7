// Writing files so that a crash or kill -9 never leaves a half-written file under the final
// name: write a temporary file in the same folder, fsync it, rename it over the target, fsync
// the folder. Plus the checks every command that writes makes first: outputs that would replace
// one of its inputs, output folders that cannot be made, and what a failed write has to say.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace na {

// "<dir>/.<name>.tmp-<pid>": the temporary name used for `path`.
std::string temp_path_for(const std::string& path);
// Is `name` (a file name, no folder) a temporary file of temp_path_for, of any process?
bool is_temp_name(const std::string& name);
// fsync(path's file), rename(tmp, path), fsync(path's folder). Throws na::Error naming `path`.
void commit_file(const std::string& tmp, const std::string& path);
// Writes `content` to `path` atomically (temp_path_for + commit_file).
void write_file_atomic(const std::string& path, const std::string& content);

// Refuses, before any work, an output that is the same file as an input (same device and inode:
// the same path, or a hard or symbolic link to it), naming both and `fix`. Outputs or inputs
// that do not exist are fine: there is nothing to compare.
void refuse_overwriting_inputs(const std::vector<std::string>& outputs, const std::vector<std::string>& inputs,
                               const std::string& fix);

// Creates the folder `dir` (and its parents) if missing. Errors name `dir`: a part of it that is
// a file, a read-only or unwritable file system. `option` names the setting to change ("--out").
void ensure_folder(const std::string& dir, const std::string& option);

// "1.5 MiB (1572864 bytes)".
std::string bytes_text(uint64_t bytes);
// For the message of a write to `path` that failed: if `reason` says the disk is full (no space
// left, quota exceeded), "; it needs about <needed> (when known, > 0), the file system holding
// <folder> has <free> free: free some space or write elsewhere" (free as df shows it, after the
// caller removed its temporary file), else "".
std::string space_hint(const std::string& reason, const std::string& path, uint64_t needed = 0);

}  // namespace na
