// A thin RAII layer over the HDF5 C API for the files nanoattn writes (checkpoints, prediction
// dumps). Objects are named by absolute paths ("/params/tok.weight"). HDF5's own error printing
// is off; every failure throws na::Error whose context is the file and whose message names the
// object, e.g. "ck.h5: dataset /params/tok.weight: shape (65, 128) expected (66, 128)".
//
// Failed writes (a full disk, a read-only or broken file system) must leave HDF5 closable:
// HDF5 1.10 keeps a file it could not flush open inside the library, then crashes or loops in
// its exit handler. So: files are created by writing an empty file ourselves and opening it
// (H5Fcreate leaks the file when its own first write fails); raw data goes straight to the disk
// (no sieve buffer), so a write fails at the call that made it, not silently at a later close;
// files close with H5F_CLOSE_STRONG (every object in them too); a file that will be thrown away
// is discard()ed first, so closing it cannot fail; and the library is shut down by an atexit
// handler of ours that runs before HDF5's own, after closing any file still open.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nanoattn/shape.h"
#include "nanoattn/tensor.h"

namespace na::h5 {

// While alive, HDF5's automatic error printing is off on this thread (errors become na::Error).
class Quiet {
 public:
  Quiet();
  ~Quiet();
  Quiet(const Quiet&) = delete;
  Quiet& operator=(const Quiet&) = delete;

 private:
  void* func_ = nullptr;  // H5E_auto2_t
  void* data_ = nullptr;
};

// HDF5's most specific message for the call that just failed, as " (HDF5: ...)", or "". Call it
// before any other HDF5 call, which would clear the error stack.
std::string hdf5_reason();

class File {
 public:
  enum class Mode { Read, ReadWrite };

  // Opens an existing file. A missing file, a file that is not HDF5 and one HDF5 cannot open
  // (truncated, corrupt) each get their own message.
  static File open(const std::string& path, Mode mode = Mode::Read);
  // Creates a file, replacing any file at `path`. A missing folder, a read-only file system or
  // a full disk is an error naming `path` (and the free space).
  static File create(const std::string& path);

  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();  // closes, ignoring errors: call close() to see them

  const std::string& path() const { return path_; }
  // The open file's HDF5 id (a hid_t), for code that needs the C API directly (the chunked,
  // compressed row datasets of prediction dumps). Throws if the file was closed.
  int64_t hid() const { return live(); }
  void flush();
  // Flushes and closes; throws if HDF5 reports a failure (the file is closed all the same).
  void close();
  // For a file about to be deleted after a failed write: its descriptor is pointed at an
  // anonymous in-memory file, so what HDF5 still flushes while closing it (and its datasets)
  // goes there and cannot fail again. Call it before closing anything of the file. No-op when
  // closed; never throws.
  void discard() noexcept;

  // Queries never throw for a missing object: a missing intermediate group is just "false".
  bool has(const std::string& object) const;  // a group or a dataset
  bool has_group(const std::string& group) const;
  bool has_dataset(const std::string& dataset) const;
  bool has_attr(const std::string& object, const std::string& name) const;

  // Creates a group and any missing parents (an existing group is fine). Groups and datasets
  // made by this layer remember the creation order of their members and attributes, so
  // listings come back in the order things were written.
  void create_group(const std::string& group);
  void remove(const std::string& object);  // unlinks a group (with its contents) or a dataset

  // Scalar attributes of a group or dataset ("/" is the root group); writing replaces an
  // existing attribute. Strings are variable-length UTF-8 (no size limit; no NUL inside).
  void set_attr_string(const std::string& object, const std::string& name, const std::string& value);
  void set_attr_int64(const std::string& object, const std::string& name, int64_t value);
  void set_attr_uint64(const std::string& object, const std::string& name, uint64_t value);
  void set_attr_double(const std::string& object, const std::string& name, double value);
  std::string attr_string(const std::string& object, const std::string& name) const;
  int64_t attr_int64(const std::string& object, const std::string& name) const;
  uint64_t attr_uint64(const std::string& object, const std::string& name) const;
  double attr_double(const std::string& object, const std::string& name) const;
  void remove_attr(const std::string& object, const std::string& name);
  // An object's attribute names: in creation order where tracked, otherwise by name.
  std::vector<std::string> attr_names(const std::string& object) const;

  // float32 datasets of rank 0 (scalar) to kMaxDims, stored contiguous and little-endian.
  // write() creates missing parent groups; an existing dataset is an error.
  void write(const std::string& dataset, const Tensor& value);
  Shape dataset_shape(const std::string& dataset) const;
  Tensor read(const std::string& dataset) const;
  // Into `out`, whose shape must equal the dataset's. Floating-point data of another width is
  // converted by HDF5; any other type is an error.
  void read_into(const std::string& dataset, const Tensor& out) const;
  // The datasets below `group` at any depth, as paths relative to it ("tok.weight/m"), in
  // creation order where the groups track it, otherwise by name.
  std::vector<std::string> datasets(const std::string& group) const;

 private:
  File(std::string path, int64_t id) : path_(std::move(path)), id_(id) {}
  int64_t live() const;  // the open file's id; throws if close() was called
  std::string path_;
  int64_t id_ = -1;  // hid_t
};

}  // namespace na::h5
