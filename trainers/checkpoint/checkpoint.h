// Checkpoints: everything needed to resume a run bit for bit, in one HDF5 file that h5py and
// h5dump read as well. The layout is documented field by field in docs/FORMATS.md.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nanoattn/tensor.h"
#include "optim/optimizer.h"

namespace na {

struct Checkpoint {
  // Bumped whenever the layout changes in a way an older reader would misread.
  static constexpr int64_t kFormatVersion = 1;
  int64_t format_version = kFormatVersion;  // as read from the file; save writes kFormatVersion
  std::string nanoattn_version;              // filled by save from core's version.h if empty
  std::string run_name;
  std::string config_yaml;                   // the run's fully resolved YAML
  int64_t step = 0;                          // optimizer updates done
  uint64_t seed = 0;                         // all randomness derives from (seed, step, cursor)
  uint64_t data_cursor = 0;                  // Batcher::cursor()
  std::string tokenizer;                     // Tokenizer::serialize()
  std::vector<std::pair<std::string, std::string>> plugins;  // plugin name -> SHA-256 hex of its .so
  std::vector<std::pair<std::string, Tensor>> params;        // dotted name -> value
  std::string optimizer;                     // "adamw" / "sgd"
  int64_t optimizer_steps = 0;               // Optimizer::step_count()
  OptimState optim;                          // "<param>/<slot>" -> buffer
  double best_val_bpc = NAN;                 // for the trainer's bookkeeping
  int64_t best_step = -1;                    // the step best_val_bpc was measured at; -1 none
  double elapsed_s = 0;                      // training wall time so far (resume adds to it)
};

// Writes a temporary file next to `path` (util/files.h's temp_path_for: `.<name>.tmp-<pid>`),
// flushes and fsyncs it, renames it over `path` and fsyncs the folder: a reader sees the old
// checkpoint or the new one, never a mix. On failure the temporary file is removed and an
// existing `path` is left untouched.
void save_checkpoint(const std::string& path, const Checkpoint& ck);
// Everything, tensors included, in the order they were saved. Throws na::Error naming the file
// and saying how to fix it: missing, not HDF5, not a checkpoint, another format version, a
// missing attribute / group / dataset, truncated or corrupt.
Checkpoint load_checkpoint(const std::string& path);
// Only the root attributes and /plugins (no tensors): for `nanoattn eval` summaries and resume
// discovery. Same checks and errors as load_checkpoint.
Checkpoint read_checkpoint_header(const std::string& path);

}  // namespace na
