// The file `nanoattn kl --out kl.h5` writes: the per-token divergences (streamed in blocks as
// they are computed), the summaries by context position and the overall statistics. Written to
// a temporary file and renamed into place by commit(), like every file nanoattn writes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "dump/h5_rows.h"
#include "dump/kl.h"
#include "io/h5.h"
#include "nanoattn/error.h"

namespace na {

class KlFileWriter {
 public:
  static constexpr int64_t kFormatVersion = 1;
  KlFileWriter(std::string path, int64_t chunk_rows);
  KlFileWriter(const KlFileWriter&) = delete;
  KlFileWriter& operator=(const KlFileWriter&) = delete;
  ~KlFileWriter();  // without commit(): removes the temporary file

  // A failure (a full disk, a read-only file system) removes the temporary file at once and
  // throws an na::Error naming the KL file (and the free space when the disk is full).
  void append(const double* kl_ab, const double* kl_ba, const double* js, const int32_t* positions, int64_t rows);
  void commit(const KlReport& r);

 private:
  void remove_temp() noexcept;             // closes (discarding) and deletes the temporary file
  [[noreturn]] void fail(const Error& e);  // remove_temp(), then throws naming the KL file
  std::string path_, tmp_;
  h5::File file_;
  std::vector<h5::RowWriter> sets_;  // kl_ab, kl_ba, js, positions
  bool closed_ = false;  // committed, or the temporary file removed after a failure
};

}  // namespace na
