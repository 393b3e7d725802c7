#include "dump/h5_rows.h"

#include <hdf5.h>
#include <zlib.h>

#include <algorithm>
#include <utility>

#include "dump/half.h"
#include "nanoattn/error.h"
#include "nanoattn/parallel.h"

namespace na::h5 {
namespace {

// Closes an HDF5 handle at scope exit.
struct Id {
  hid_t id;
  herr_t (*close)(hid_t);
  Id(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~Id() {
    if (id >= 0) close(id);
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
};

// IEEE binary16, little-endian: made exactly as h5py makes its IEEE_F16LE, so h5py reads it as
// numpy.float16 and h5dump prints it as a 16-bit float.
hid_t make_f16() {
  const hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  H5Tset_order(t, H5T_ORDER_LE);
  return t;
}

// The file type and the matching in-memory type of an element (owned: close both).
std::pair<hid_t, hid_t> types_of(Elem e) {
  switch (e) {
    case Elem::I32: return {H5Tcopy(H5T_STD_I32LE), H5Tcopy(H5T_NATIVE_INT32)};
    case Elem::I64: return {H5Tcopy(H5T_STD_I64LE), H5Tcopy(H5T_NATIVE_INT64)};
    case Elem::F16: return {make_f16(), make_f16()};  // our buffers hold little-endian bit patterns
    case Elem::F32: return {H5Tcopy(H5T_IEEE_F32LE), H5Tcopy(H5T_NATIVE_FLOAT)};
    case Elem::F64: return {H5Tcopy(H5T_IEEE_F64LE), H5Tcopy(H5T_NATIVE_DOUBLE)};
  }
  return {-1, -1};
}

std::string ds_what(const std::string& name) { return "dataset " + name; }

// The parent groups of a dataset path, made with File's ordered groups.
void make_parents(File& file, const std::string& name) {
  const size_t slash = name.rfind('/');
  if (slash != std::string::npos && slash > 0) file.create_group(name.substr(0, slash));
}

}  // namespace

size_t elem_size(Elem e) {
  switch (e) {
    case Elem::I32: case Elem::F32: return 4;
    case Elem::I64: case Elem::F64: return 8;
    case Elem::F16: return 2;
  }
  return 0;
}

const char* elem_name(Elem e) {
  switch (e) {
    case Elem::I32: return "int32";
    case Elem::I64: return "int64";
    case Elem::F16: return "float16";
    case Elem::F32: return "float32";
    case Elem::F64: return "float64";
  }
  return "?";
}

// ---- writing -------------------------------------------------------------------------------

RowWriter::RowWriter(File& file, const std::string& name, Elem elem, int64_t width, int64_t chunk_rows, int deflate)
    : file_path_(file.path()), name_(name), elem_(elem), width_(width), chunk_rows_(chunk_rows), deflate_(deflate) {
  Quiet quiet;
  NA_CHECK(chunk_rows >= 1 && width >= 0, file_path_, ds_what(name), ": chunk of ", chunk_rows, " rows of width ",
           width);
  NA_CHECK(deflate == 0 || H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0, file_path_, ds_what(name),
           ": this HDF5 library has no deflate (zlib) filter: install an HDF5 built with zlib");
  make_parents(file, name);
  const int rank = width_ ? 2 : 1;
  const hsize_t dims[2] = {0, static_cast<hsize_t>(width_)};
  const hsize_t maxdims[2] = {H5S_UNLIMITED, static_cast<hsize_t>(width_)};
  const hsize_t chunk[2] = {static_cast<hsize_t>(chunk_rows), static_cast<hsize_t>(std::max<int64_t>(width_, 1))};
  Id space(H5Screate_simple(rank, dims, maxdims), H5Sclose);
  Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_attr_creation_order(dcpl.id, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  H5Pset_chunk(dcpl.id, rank, chunk);
  if (deflate > 0) {
    H5Pset_shuffle(dcpl.id);  // bytes of equal significance together: floats compress better
    H5Pset_deflate(dcpl.id, static_cast<unsigned>(deflate));
  }
  Id dapl(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose);
  H5Pset_chunk_cache(dapl.id, 0, 0, 1.0);  // write-through: no chunk kept after it is written
  auto [ftype, mtype] = types_of(elem);
  Id ft(ftype, H5Tclose), mt(mtype, H5Tclose);
  ds_ = H5Dcreate2(file.hid(), name.c_str(), ft.id, space.id, H5P_DEFAULT, dcpl.id, dapl.id);
  if (ds_ < 0) throw Error(file_path_, ds_what(name) + ": cannot create it" + hdf5_reason());
}

RowWriter::RowWriter(RowWriter&& o) noexcept
    : file_path_(std::move(o.file_path_)), name_(std::move(o.name_)), elem_(o.elem_), width_(o.width_),
      chunk_rows_(o.chunk_rows_), rows_(o.rows_), deflate_(o.deflate_), ds_(std::exchange(o.ds_, -1)),
      shuffled_(std::move(o.shuffled_)), packed_(std::move(o.packed_)) {}

RowWriter::~RowWriter() {
  if (ds_ >= 0) {
    Quiet quiet;
    H5Dclose(ds_);
  }
}

void RowWriter::close() {
  if (ds_ < 0) return;
  Quiet quiet;
  if (H5Dclose(std::exchange(ds_, -1)) < 0) throw Error(file_path_, ds_what(name_) + ": closing it failed" + hdf5_reason());
}

void RowWriter::append(const void* data, int64_t n) {
  if (n <= 0) return;
  Quiet quiet;
  NA_CHECK(ds_ >= 0, file_path_, ds_what(name_), ": already closed");
  if (deflate_ > 0 && rows_ % chunk_rows_ == 0) return append_chunks(data, n);
  // Not on a chunk boundary (only after a partial last chunk): HDF5 merges and filters.
  const int rank = width_ ? 2 : 1;
  const hsize_t size[2] = {static_cast<hsize_t>(rows_ + n), static_cast<hsize_t>(width_)};
  if (H5Dset_extent(ds_, size) < 0) throw Error(file_path_, ds_what(name_) + ": cannot extend it" + hdf5_reason());
  Id fspace(H5Dget_space(ds_), H5Sclose);
  const hsize_t start[2] = {static_cast<hsize_t>(rows_), 0};
  const hsize_t count[2] = {static_cast<hsize_t>(n), static_cast<hsize_t>(width_)};
  H5Sselect_hyperslab(fspace.id, H5S_SELECT_SET, start, nullptr, count, nullptr);
  Id mspace(H5Screate_simple(rank, count, nullptr), H5Sclose);
  auto [ftype, mtype] = types_of(elem_);
  Id ft(ftype, H5Tclose), mt(mtype, H5Tclose);
  if (H5Dwrite(ds_, mt.id, mspace.id, fspace.id, H5P_DEFAULT, data) < 0)
    throw Error(file_path_, ds_what(name_) + ": cannot write rows " + std::to_string(rows_) + " to " +
                                std::to_string(rows_ + n) + " (disk full?)" + hdf5_reason());
  rows_ += n;
}

size_t RowWriter::scratch_bytes() const {
  size_t n = 0;
  for (const auto& v : shuffled_) n += v.capacity();
  for (const auto& v : packed_) n += v.capacity();
  return n;
}

void RowWriter::append_chunks(const void* data, int64_t n) {
  const size_t esize = elem_size(elem_);
  const size_t row_bytes = esize * static_cast<size_t>(std::max<int64_t>(width_, 1));
  const size_t chunk_bytes = row_bytes * static_cast<size_t>(chunk_rows_);
  const int64_t chunks = (n + chunk_rows_ - 1) / chunk_rows_;
  shuffled_.resize(std::max<size_t>(shuffled_.size(), static_cast<size_t>(chunks)));
  packed_.resize(shuffled_.size());
  std::vector<uLongf> sizes(static_cast<size_t>(chunks));
  std::vector<int> status(static_cast<size_t>(chunks), Z_OK);
  const auto* src = static_cast<const unsigned char*>(data);
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      // A chunk is stored whole: rows past the data are zeros (HDF5's default fill value).
      const size_t have = row_bytes * static_cast<size_t>(std::min(chunk_rows_, n - c * chunk_rows_));
      const unsigned char* in = src + static_cast<size_t>(c) * chunk_bytes;
      std::vector<unsigned char>& sh = shuffled_[c];
      std::vector<unsigned char>& out = packed_[c];
      sh.assign(chunk_bytes, 0);
      // HDF5's shuffle filter: byte k of every element, for k = 0 .. size - 1, one after another.
      const size_t elems = chunk_bytes / esize, have_elems = have / esize;
      for (size_t k = 0; k < esize; ++k)
        for (size_t e = 0; e < have_elems; ++e) sh[k * elems + e] = in[e * esize + k];
      out.resize(compressBound(static_cast<uLong>(chunk_bytes)));
      sizes[c] = static_cast<uLongf>(out.size());
      status[c] = compress2(out.data(), &sizes[c], sh.data(), static_cast<uLong>(chunk_bytes), deflate_);
    }
  });
  const hsize_t size[2] = {static_cast<hsize_t>(rows_ + n), static_cast<hsize_t>(width_)};
  if (H5Dset_extent(ds_, size) < 0) throw Error(file_path_, ds_what(name_) + ": cannot extend it" + hdf5_reason());
  for (int64_t c = 0; c < chunks; ++c) {
    NA_CHECK(status[c] == Z_OK, file_path_, ds_what(name_), ": zlib could not compress a chunk (error ", status[c], ")");
    const hsize_t offset[2] = {static_cast<hsize_t>(rows_ + c * chunk_rows_), 0};
    if (H5Dwrite_chunk(ds_, H5P_DEFAULT, 0, offset, sizes[c], packed_[c].data()) < 0)
      throw Error(file_path_, ds_what(name_) + ": cannot write rows " + std::to_string(offset[0]) + " to " +
                                  std::to_string(offset[0] + chunk_rows_) + " (disk full?)" + hdf5_reason());
  }
  rows_ += n;
}

void write_small(File& file, const std::string& name, Elem elem, const std::vector<int64_t>& shape,
                 const void* data) {
  Quiet quiet;
  make_parents(file, name);
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  hsize_t n = 1;
  for (hsize_t d : dims) n *= d;
  Id space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
           H5Sclose);
  auto [ftype, mtype] = types_of(elem);
  Id ft(ftype, H5Tclose), mt(mtype, H5Tclose);
  Id ds(H5Dcreate2(file.hid(), name.c_str(), ft.id, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  if (ds.id < 0) throw Error(file.path(), ds_what(name) + ": cannot create it" + hdf5_reason());
  if (n > 0 && H5Dwrite(ds.id, mt.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    throw Error(file.path(), ds_what(name) + ": cannot write it" + hdf5_reason());
}

void write_strings(File& file, const std::string& name, const std::vector<std::string>& values) {
  Quiet quiet;
  make_parents(file, name);
  const hsize_t n = values.size();
  Id space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.id, H5T_VARIABLE);
  H5Tset_cset(type.id, H5T_CSET_UTF8);
  Id ds(H5Dcreate2(file.hid(), name.c_str(), type.id, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  if (ds.id < 0) throw Error(file.path(), ds_what(name) + ": cannot create it" + hdf5_reason());
  std::vector<const char*> ptrs;
  for (const std::string& v : values) ptrs.push_back(v.c_str());
  if (n > 0 && H5Dwrite(ds.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
    throw Error(file.path(), ds_what(name) + ": cannot write it" + hdf5_reason());
}

// ---- reading -------------------------------------------------------------------------------

RowReader::RowReader(const File& file, const std::string& name, Kind kind) : file_path_(file.path()), name_(name) {
  Quiet quiet;
  const std::string what = ds_what(name);
  NA_CHECK(file.has_dataset(name), file_path_, what, file.has(name) ? ": exists but is not a dataset" : ": missing");
  hid_t fid = file.hid();
  // Open once to learn the chunk size, then again with a cache that holds two chunks: blocks of
  // rows that straddle a chunk boundary then decompress each chunk once.
  hsize_t chunk[2] = {0, 0};
  size_t chunk_bytes = 0;
  {
    Id probe(H5Dopen2(fid, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (probe.id < 0) throw Error(file_path_, what + ": cannot open it" + hdf5_reason());
    Id dcpl(H5Dget_create_plist(probe.id), H5Pclose);
    Id type(H5Dget_type(probe.id), H5Tclose);
    if (dcpl.id >= 0 && H5Pget_layout(dcpl.id) == H5D_CHUNKED) {
      const int r = H5Pget_chunk(dcpl.id, 2, chunk);
      chunk_bytes = H5Tget_size(type.id);
      for (int i = 0; i < r; ++i) chunk_bytes *= chunk[i];
    }
  }
  Id dapl(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose);
  if (chunk_bytes > 0) H5Pset_chunk_cache(dapl.id, 521, std::min<size_t>(2 * chunk_bytes + 4096, size_t{64} << 20), 1.0);
  ds_ = H5Dopen2(fid, name.c_str(), dapl.id);
  if (ds_ < 0) throw Error(file_path_, what + ": cannot open it" + hdf5_reason());
  chunk_rows_ = static_cast<int64_t>(chunk[0]);
  Id space(H5Dget_space(ds_), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.id);
  NA_CHECK(rank == 1 || rank == 2, file_path_, what, ": rank ", rank, ", expected ", kind == Kind::Float ? "1 or 2" : "1",
           " (rows first)");
  hsize_t dims[2] = {0, 0};
  H5Sget_simple_extent_dims(space.id, dims, nullptr);
  rows_ = static_cast<int64_t>(dims[0]);
  width_ = rank == 2 ? static_cast<int64_t>(dims[1]) : 0;
  NA_CHECK(rank == 1 || width_ > 0, file_path_, what, ": has zero columns");
  Id type(H5Dget_type(ds_), H5Tclose);
  const H5T_class_t cls = H5Tget_class(type.id);
  file_size_ = H5Tget_size(type.id);
  if (kind == Kind::Integer)
    NA_CHECK(cls == H5T_INTEGER, file_path_, what, ": expected integers, found another type");
  else
    NA_CHECK(cls == H5T_FLOAT, file_path_, what, ": expected floating-point numbers, found another type");
  f16_ = cls == H5T_FLOAT && file_size_ == 2;
}

RowReader::RowReader(RowReader&& o) noexcept
    : file_path_(std::move(o.file_path_)), name_(std::move(o.name_)), ds_(std::exchange(o.ds_, -1)), rows_(o.rows_),
      width_(o.width_), chunk_rows_(o.chunk_rows_), f16_(o.f16_), file_size_(o.file_size_) {}

RowReader::~RowReader() {
  if (ds_ >= 0) {
    Quiet quiet;
    H5Dclose(ds_);
  }
}

void RowReader::read_raw(int64_t begin, int64_t count, int64_t mem_type, void* out) const {
  if (count <= 0) return;
  Quiet quiet;
  NA_CHECK(begin >= 0 && begin + count <= rows_, file_path_, ds_what(name_), ": rows ", begin, " to ", begin + count,
           " asked, it has ", rows_);
  const int rank = width_ ? 2 : 1;
  Id fspace(H5Dget_space(ds_), H5Sclose);
  const hsize_t start[2] = {static_cast<hsize_t>(begin), 0};
  const hsize_t n[2] = {static_cast<hsize_t>(count), static_cast<hsize_t>(width_)};
  H5Sselect_hyperslab(fspace.id, H5S_SELECT_SET, start, nullptr, n, nullptr);
  Id mspace(H5Screate_simple(rank, n, nullptr), H5Sclose);
  if (H5Dread(ds_, mem_type, mspace.id, fspace.id, H5P_DEFAULT, out) < 0)
    throw Error(file_path_, ds_what(name_) + ": cannot read rows " + std::to_string(begin) + " to " +
                                std::to_string(begin + count) + ": the file is truncated or corrupt" + hdf5_reason());
}

void RowReader::read_i32(int64_t begin, int64_t count, int32_t* out) const {
  read_raw(begin, count, H5T_NATIVE_INT32, out);
}

void RowReader::read_f32(int64_t begin, int64_t count, float* out) const {
  if (!f16_) return read_raw(begin, count, H5T_NATIVE_FLOAT, out);
  const int64_t n = count * std::max<int64_t>(width_, 1);
  half_.resize(static_cast<size_t>(n));
  Id t(make_f16(), H5Tclose);
  read_raw(begin, count, t.id, half_.data());
  for (int64_t i = 0; i < n; ++i) out[i] = half_to_float(half_[i]);
}

std::vector<std::string> read_strings(const File& file, const std::string& name) {
  Quiet quiet;
  const std::string what = ds_what(name);
  NA_CHECK(file.has_dataset(name), file.path(), what, ": missing");
  Id ds(H5Dopen2(file.hid(), name.c_str(), H5P_DEFAULT), H5Dclose);
  if (ds.id < 0) throw Error(file.path(), what + ": cannot open it" + hdf5_reason());
  Id ftype(H5Dget_type(ds.id), H5Tclose);
  NA_CHECK(H5Tget_class(ftype.id) == H5T_STRING && H5Tis_variable_str(ftype.id) > 0, file.path(), what,
           ": expected variable-length strings");
  Id space(H5Dget_space(ds.id), H5Sclose);
  NA_CHECK(H5Sget_simple_extent_ndims(space.id) == 1, file.path(), what, ": expected a 1-D list of strings");
  const hssize_t n = H5Sget_simple_extent_npoints(space.id);
  std::vector<char*> ptrs(static_cast<size_t>(std::max<hssize_t>(n, 0)), nullptr);
  Id mtype(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mtype.id, H5T_VARIABLE);
  H5Tset_cset(mtype.id, H5Tget_cset(ftype.id));
  if (n > 0 && H5Dread(ds.id, mtype.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
    throw Error(file.path(), what + ": cannot read it: the file is truncated or corrupt" + hdf5_reason());
  std::vector<std::string> out;
  for (char* p : ptrs) out.emplace_back(p ? p : "");
#if H5_VERSION_GE(1, 12, 0)
  H5Treclaim(mtype.id, space.id, H5P_DEFAULT, ptrs.data());
#else
  H5Dvlen_reclaim(mtype.id, space.id, H5P_DEFAULT, ptrs.data());
#endif
  return out;
}

}  // namespace na::h5
