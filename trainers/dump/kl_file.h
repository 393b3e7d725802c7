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

namespace na {

class KlFileWriter {
 public:
  static constexpr int64_t kFormatVersion = 1;
  KlFileWriter(std::string path, int64_t chunk_rows);
  KlFileWriter(const KlFileWriter&) = delete;
  KlFileWriter& operator=(const KlFileWriter&) = delete;
  ~KlFileWriter();  // without commit(): removes the temporary file

  void append(const double* kl_ab, const double* kl_ba, const double* js, const int32_t* positions, int64_t rows);
  void commit(const KlReport& r);

 private:
  std::string path_, tmp_;
  h5::File file_;
  std::vector<h5::RowWriter> sets_;  // kl_ab, kl_ba, js, positions
  bool committed_ = false;
};

}  // namespace na
