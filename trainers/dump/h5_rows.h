// Row datasets for prediction dumps and KL files: 1-D (N,) or 2-D (N, width) HDF5 datasets that
// grow as rows are appended, chunked by rows and compressed with the shuffle + deflate filters
// every HDF5 build has (h5py, h5dump, MATLAB, Julia... read them; never LZF or another filter
// only one library ships). Reads come back in blocks of rows, so neither side ever holds a
// whole dataset.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/h5.h"

namespace na::h5 {

// Element types as stored in the file (all little-endian). F16 is IEEE binary16, the layout
// h5py maps to numpy.float16 (HDF5 1.10 has no predefined one).
enum class Elem { I32, I64, F16, F32, F64 };
size_t elem_size(Elem e);
const char* elem_name(Elem e);  // "int32", "float16", ...

// Appends rows to a new dataset. The caller's buffers hold the file's element layout (F16: the
// uint16 bit patterns). No chunk cache: each append of whole chunks is filtered and written at
// once, so memory does not grow with the dataset. An append that starts on a chunk boundary
// compresses its chunks in parallel (the shuffle + deflate HDF5's own filters would produce, so
// any reader decodes them) and writes them directly (H5Dwrite_chunk): deflate is most of a
// dump's cost, and HDF5 runs its filters on one thread.
class RowWriter {
 public:
  // width 0: a 1-D dataset (N,); else (N, width). `chunk_rows` rows per chunk; `deflate` 0-9.
  RowWriter(File& file, const std::string& name, Elem elem, int64_t width, int64_t chunk_rows, int deflate);
  RowWriter(RowWriter&& o) noexcept;
  RowWriter(const RowWriter&) = delete;
  RowWriter& operator=(const RowWriter&) = delete;
  RowWriter& operator=(RowWriter&&) = delete;
  ~RowWriter();

  void append(const void* data, int64_t rows);
  int64_t rows() const { return rows_; }
  size_t scratch_bytes() const;  // the compression buffers it keeps between appends
  void close();  // throws on failure (the destructor ignores errors)

 private:
  void append_chunks(const void* data, int64_t rows);
  std::string file_path_, name_;
  Elem elem_;
  int64_t width_, chunk_rows_, rows_ = 0;
  int deflate_;
  int64_t ds_ = -1;  // hid_t
  std::vector<std::vector<unsigned char>> shuffled_, packed_;  // per chunk of one append
};

// Reads rows of an existing dataset, checking it is 1-D or 2-D and of the expected kind.
class RowReader {
 public:
  enum class Kind { Integer, Float };
  RowReader(const File& file, const std::string& name, Kind kind);
  RowReader(RowReader&& o) noexcept;
  RowReader(const RowReader&) = delete;
  RowReader& operator=(const RowReader&) = delete;
  RowReader& operator=(RowReader&&) = delete;
  ~RowReader();

  int64_t rows() const { return rows_; }
  int64_t width() const { return width_; }   // 0 for a 1-D dataset
  int rank() const { return width_ ? 2 : 1; }
  bool is_f16() const { return f16_; }       // a 2-byte IEEE float
  size_t file_elem_size() const { return file_size_; }
  int64_t chunk_rows() const { return chunk_rows_; }  // 0 when not chunked
  const std::string& name() const { return name_; }

  // Rows [begin, begin + count) as int32 / float / double (F16 data is converted by half.h).
  void read_i32(int64_t begin, int64_t count, int32_t* out) const;
  void read_f32(int64_t begin, int64_t count, float* out) const;

 private:
  void read_raw(int64_t begin, int64_t count, int64_t mem_type, void* out) const;
  std::string file_path_, name_;
  int64_t ds_ = -1;  // hid_t
  int64_t rows_ = 0, width_ = 0, chunk_rows_ = 0;
  bool f16_ = false;
  size_t file_size_ = 0;
  mutable std::vector<uint16_t> half_;  // F16 staging, one read's worth
};

// Small whole datasets (summaries, by-position arrays): contiguous, written at once.
void write_small(File& file, const std::string& name, Elem elem, const std::vector<int64_t>& shape, const void* data);
// A (V,) dataset of variable-length UTF-8 strings (the caller makes them valid UTF-8).
void write_strings(File& file, const std::string& name, const std::vector<std::string>& values);
std::vector<std::string> read_strings(const File& file, const std::string& name);

}  // namespace na::h5
