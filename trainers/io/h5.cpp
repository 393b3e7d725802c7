#include "io/h5.h"

#include <hdf5.h>

#include <filesystem>
#include <limits>
#include <utility>

#include "nanoattn/error.h"

namespace na::h5 {
namespace fs = std::filesystem;

// Silences HDF5's automatic error-stack printing (per thread) while alive: we report errors
// ourselves, once, as na::Error. Restores the previous handler so nesting is harmless.
Quiet::Quiet() {
  H5E_auto2_t func = nullptr;
  H5Eget_auto2(H5E_DEFAULT, &func, &data_);
  func_ = reinterpret_cast<void*>(func);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

Quiet::~Quiet() { H5Eset_auto2(H5E_DEFAULT, reinterpret_cast<H5E_auto2_t>(func_), data_); }

std::string hdf5_reason() {
  std::string desc;
  auto first = [](unsigned n, const H5E_error2_t* e, void* out) -> herr_t {
    if (n == 0 && e->desc) *static_cast<std::string*>(out) = e->desc;
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first, &desc);
  return desc.empty() ? "" : " (HDF5: " + desc + ")";
}

namespace {

static_assert(sizeof(hid_t) == sizeof(int64_t), "File stores a hid_t in an int64_t");

// Closes an HDF5 handle with its own close function at scope exit.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, -1)), close_(o.close_) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle& operator=(Handle&&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// HDF5's most specific message for the call that just failed (the innermost entry of the error
// stack, e.g. "truncated file: eof = 800, ..."), as " (HDF5: ...)", or "" if there is none.
// Must run before any other HDF5 call, which would clear the stack.
std::string reason() { return hdf5_reason(); }

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    if (next > pos) parts.push_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  return parts;
}

// Walks the path link by link so that a missing intermediate group is "false", not an error.
bool exists(hid_t file, const std::string& object) {
  std::string prefix;
  for (const std::string& part : split(object)) {
    prefix += "/" + part;
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

// H5I_GROUP, H5I_DATASET, ... or H5I_BADID when there is no such object.
H5I_type_t kind(hid_t file, const std::string& object) {
  if (!exists(file, object)) return H5I_BADID;
  Handle o(H5Oopen(file, object.empty() ? "/" : object.c_str(), H5P_DEFAULT), H5Oclose);
  return o.ok() ? H5Iget_type(o.get()) : H5I_BADID;
}

const char* class_name(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER: return "an integer";
    case H5T_FLOAT: return "a floating-point number";
    case H5T_STRING: return "a string";
    case H5T_COMPOUND: return "a compound";
    case H5T_ENUM: return "an enum";
    case H5T_ARRAY: return "an array";
    case H5T_VLEN: return "a variable-length sequence";
    default: return "another HDF5 type";
  }
}

// Creation properties for every group we make: link and attribute order tracked and indexed.
Handle ordered_gcpl() {
  Handle gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
  H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  H5Pset_attr_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  return gcpl;
}

// Creates the first `count` components of `parts` as groups where missing.
void make_groups(hid_t file, const std::string& fpath, const std::vector<std::string>& parts, size_t count) {
  std::string prefix;
  for (size_t i = 0; i < count; ++i) {
    prefix += "/" + parts[i];
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) > 0) {
      NA_CHECK(kind(file, prefix) == H5I_GROUP, fpath, "group ", prefix,
               ": something that is not a group already has that name");
      continue;
    }
    Handle gcpl = ordered_gcpl();
    Handle g(H5Gcreate2(file, prefix.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose);
    if (!g.ok()) throw Error(fpath, "group " + prefix + ": cannot create it" + reason());
  }
}

std::string attr_what(const std::string& object, const std::string& name) {
  return "attribute '" + name + "' of " + (object.empty() ? "/" : object);
}

void write_attr(hid_t file, const std::string& fpath, const std::string& object, const std::string& name,
                hid_t type, const void* value) {
  const std::string what = attr_what(object, name);
  NA_CHECK(!name.empty(), fpath, what, ": an attribute needs a non-empty name");
  NA_CHECK(exists(file, object), fpath, what, ": no such group or dataset");
  const char* obj = object.empty() ? "/" : object.c_str();
  if (H5Aexists_by_name(file, obj, name.c_str(), H5P_DEFAULT) > 0 &&
      H5Adelete_by_name(file, obj, name.c_str(), H5P_DEFAULT) < 0)
    throw Error(fpath, what + ": cannot replace it" + reason());
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle a(H5Acreate_by_name(file, obj, name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
           H5Aclose);
  if (!a.ok()) throw Error(fpath, what + ": cannot create it" + reason());
  if (H5Awrite(a.get(), type, value) < 0) throw Error(fpath, what + ": cannot write it" + reason());
}

struct OpenAttr {
  Handle attr;
  Handle type;
  std::string what;
  H5T_class_t cls;
};

OpenAttr open_attr(hid_t file, const std::string& fpath, const std::string& object, const std::string& name) {
  std::string what = attr_what(object, name);
  NA_CHECK(exists(file, object), fpath, what, ": no such group or dataset");
  const char* obj = object.empty() ? "/" : object.c_str();
  NA_CHECK(H5Aexists_by_name(file, obj, name.c_str(), H5P_DEFAULT) > 0, fpath, what, ": missing");
  Handle a(H5Aopen_by_name(file, obj, name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!a.ok()) throw Error(fpath, what + ": cannot open it" + reason());
  Handle space(H5Aget_space(a.get()), H5Sclose);
  const hssize_t n = space.ok() ? H5Sget_simple_extent_npoints(space.get()) : -1;
  NA_CHECK(n == 1, fpath, what, ": expected a single value, found ", n);
  Handle type(H5Aget_type(a.get()), H5Tclose);
  if (!type.ok()) throw Error(fpath, what + ": cannot read its type" + reason());
  const H5T_class_t cls = H5Tget_class(type.get());
  return {std::move(a), std::move(type), std::move(what), cls};
}

void read_attr(const std::string& fpath, const OpenAttr& a, hid_t mem_type, void* out) {
  if (H5Aread(a.attr.get(), mem_type, out) < 0) throw Error(fpath, a.what + ": cannot read it" + reason());
}

// An open dataset and its shape; checks that it is a dataset of a rank a Tensor can hold.
struct OpenDataset {
  Handle ds;
  Shape shape;
};

OpenDataset open_dataset(hid_t file, const std::string& fpath, const std::string& dataset) {
  const std::string what = "dataset " + dataset;
  const H5I_type_t k = kind(file, dataset);
  NA_CHECK(k != H5I_BADID, fpath, what, ": missing");
  NA_CHECK(k == H5I_DATASET, fpath, what, ": exists but is not a dataset (a group?)");
  Handle ds(H5Dopen2(file, dataset.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) throw Error(fpath, what + ": cannot open it" + reason());
  Handle space(H5Dget_space(ds.get()), H5Sclose);
  if (!space.ok()) throw Error(fpath, what + ": cannot read its dataspace" + reason());
  const H5S_class_t sc = H5Sget_simple_extent_type(space.get());
  NA_CHECK(sc == H5S_SCALAR || sc == H5S_SIMPLE, fpath, what, ": has an empty (null) dataspace");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  NA_CHECK(rank >= 0 && rank <= kMaxDims, fpath, what, ": rank ", rank, ", tensors have at most ",
           kMaxDims, " dims");
  hsize_t dims[kMaxDims] = {};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  Shape shape = Shape::from_range(dims, dims + rank);
  return {std::move(ds), shape};
}

void list_datasets(hid_t g, const std::string& fpath, const std::string& at, const std::string& prefix,
                   std::vector<std::string>& out) {
  Handle gcpl(H5Gget_create_plist(g), H5Pclose);
  unsigned flags = 0;
  if (gcpl.ok()) H5Pget_link_creation_order(gcpl.get(), &flags);
  const H5_index_t index = (flags & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  H5G_info_t info;
  if (H5Gget_info(g, &info) < 0) throw Error(fpath, "group " + at + ": cannot list it" + reason());
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len = H5Lget_name_by_idx(g, ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) throw Error(fpath, "group " + at + ": cannot read the name of member " + std::to_string(i) + reason());
    std::string name(static_cast<size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(g, ".", index, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<size_t>(len));
    const std::string child = (at == "/" ? "" : at) + "/" + name;
    Handle o(H5Oopen(g, name.c_str(), H5P_DEFAULT), H5Oclose);
    if (!o.ok()) throw Error(fpath, child + ": cannot open it" + reason());
    const H5I_type_t t = H5Iget_type(o.get());
    if (t == H5I_GROUP) list_datasets(o.get(), fpath, child, prefix + name + "/", out);
    if (t == H5I_DATASET) out.push_back(prefix + name);
  }
}

}  // namespace

// ---- files ---------------------------------------------------------------------------------

File File::open(const std::string& path, Mode mode) {
  Quiet quiet;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  NA_CHECK(fs::exists(st), path, "no such file: check the path");
  NA_CHECK(!fs::is_directory(st), path, "is a directory, not an HDF5 file");
#if H5_VERSION_GE(1, 12, 0)
  const htri_t is_h5 = H5Fis_accessible(path.c_str(), H5P_DEFAULT);
#else
  const htri_t is_h5 = H5Fis_hdf5(path.c_str());
#endif
  NA_CHECK(is_h5 >= 0, path, "cannot be read", reason());
  NA_CHECK(is_h5 > 0, path, "not an HDF5 file (it lacks the HDF5 signature): pass a .h5 file written by nanoattn or h5py");
  const hid_t id = H5Fopen(path.c_str(), mode == Mode::Read ? H5F_ACC_RDONLY : H5F_ACC_RDWR, H5P_DEFAULT);
  NA_CHECK(id >= 0, path, "an HDF5 file that HDF5 cannot open: it is truncated or corrupt (or locked by a writer)",
           reason());
  return File(path, id);
}

File File::create(const std::string& path) {
  Quiet quiet;
  // The root group tracks creation order like every group this layer makes.
  Handle fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
  H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  H5Pset_attr_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT);
  if (id < 0) {
    const std::string why = reason();
    fs::path dir = fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    NA_CHECK(fs::is_directory(dir, ec), path, "cannot create it: directory ", dir.string(), " does not exist");
    throw Error(path, "cannot create it" + why);
  }
  return File(path, id);
}

File::File(File&& other) noexcept : path_(std::move(other.path_)), id_(std::exchange(other.id_, -1)) {}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    if (id_ >= 0) {
      Quiet quiet;
      H5Fclose(id_);
    }
    path_ = std::move(other.path_);
    id_ = std::exchange(other.id_, -1);
  }
  return *this;
}

File::~File() {
  if (id_ >= 0) {
    Quiet quiet;
    H5Fclose(id_);
  }
}

int64_t File::live() const {
  NA_CHECK(id_ >= 0, path_, "the file was closed");
  return id_;
}

void File::flush() {
  Quiet quiet;
  if (H5Fflush(live(), H5F_SCOPE_GLOBAL) < 0) throw Error(path_, "flushing the file failed" + reason());
}

void File::close() {
  if (id_ < 0) return;
  Quiet quiet;
  const hid_t id = std::exchange(id_, -1);
  if (H5Fclose(id) < 0) throw Error(path_, "closing the file failed" + reason());
}

// ---- groups and queries --------------------------------------------------------------------

bool File::has(const std::string& object) const {
  Quiet quiet;
  return exists(live(), object);
}

bool File::has_group(const std::string& group) const {
  Quiet quiet;
  return kind(live(), group) == H5I_GROUP;
}

bool File::has_dataset(const std::string& dataset) const {
  Quiet quiet;
  return kind(live(), dataset) == H5I_DATASET;
}

bool File::has_attr(const std::string& object, const std::string& name) const {
  Quiet quiet;
  const hid_t f = live();
  return !name.empty() && exists(f, object) &&
         H5Aexists_by_name(f, object.empty() ? "/" : object.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

void File::create_group(const std::string& group) {
  Quiet quiet;
  const std::vector<std::string> parts = split(group);
  make_groups(live(), path_, parts, parts.size());
}

void File::remove(const std::string& object) {
  Quiet quiet;
  const hid_t f = live();
  NA_CHECK(!split(object).empty(), path_, "the root group cannot be removed");
  NA_CHECK(exists(f, object), path_, object, ": no such group or dataset to remove");
  if (H5Ldelete(f, object.c_str(), H5P_DEFAULT) < 0) throw Error(path_, object + ": cannot remove it" + reason());
}

// ---- attributes ----------------------------------------------------------------------------

void File::set_attr_string(const std::string& object, const std::string& name, const std::string& value) {
  Quiet quiet;
  const size_t nul = value.find('\0');
  NA_CHECK(nul == std::string::npos, path_, attr_what(object, name), ": the string has a NUL byte at offset ",
           nul, " and HDF5 strings end at the first NUL");
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  const char* s = value.c_str();
  write_attr(live(), path_, object, name, type.get(), &s);
}

void File::set_attr_int64(const std::string& object, const std::string& name, int64_t value) {
  Quiet quiet;
  write_attr(live(), path_, object, name, H5T_NATIVE_INT64, &value);
}

void File::set_attr_uint64(const std::string& object, const std::string& name, uint64_t value) {
  Quiet quiet;
  write_attr(live(), path_, object, name, H5T_NATIVE_UINT64, &value);
}

void File::set_attr_double(const std::string& object, const std::string& name, double value) {
  Quiet quiet;
  write_attr(live(), path_, object, name, H5T_NATIVE_DOUBLE, &value);
}

std::string File::attr_string(const std::string& object, const std::string& name) const {
  Quiet quiet;
  OpenAttr a = open_attr(live(), path_, object, name);
  NA_CHECK(a.cls == H5T_STRING, path_, a.what, ": expected a string, found ", class_name(a.cls));
  Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_cset(mem.get(), H5Tget_cset(a.type.get()));
  if (H5Tis_variable_str(a.type.get()) > 0) {
    H5Tset_size(mem.get(), H5T_VARIABLE);
    char* s = nullptr;
    read_attr(path_, a, mem.get(), &s);
    std::string out = s ? s : "";
    if (s) H5free_memory(s);
    return out;
  }
  // Fixed-length (h5py writes these for numpy bytes): one extra byte guarantees a terminator.
  const size_t size = H5Tget_size(a.type.get());
  H5Tset_size(mem.get(), size + 1);
  H5Tset_strpad(mem.get(), H5T_STR_NULLTERM);
  std::string buf(size + 1, '\0');
  read_attr(path_, a, mem.get(), buf.data());
  buf.resize(buf.find('\0'));
  return buf;
}

int64_t File::attr_int64(const std::string& object, const std::string& name) const {
  Quiet quiet;
  OpenAttr a = open_attr(live(), path_, object, name);
  NA_CHECK(a.cls == H5T_INTEGER, path_, a.what, ": expected an integer, found ", class_name(a.cls));
  if (H5Tget_sign(a.type.get()) == H5T_SGN_NONE) {
    uint64_t u = 0;
    read_attr(path_, a, H5T_NATIVE_UINT64, &u);
    NA_CHECK(u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), path_, a.what, ": ", u,
             " does not fit in int64");
    return static_cast<int64_t>(u);
  }
  int64_t v = 0;
  read_attr(path_, a, H5T_NATIVE_INT64, &v);
  return v;
}

uint64_t File::attr_uint64(const std::string& object, const std::string& name) const {
  Quiet quiet;
  OpenAttr a = open_attr(live(), path_, object, name);
  NA_CHECK(a.cls == H5T_INTEGER, path_, a.what, ": expected an integer, found ", class_name(a.cls));
  if (H5Tget_sign(a.type.get()) != H5T_SGN_NONE) {
    int64_t v = 0;
    read_attr(path_, a, H5T_NATIVE_INT64, &v);
    NA_CHECK(v >= 0, path_, a.what, ": expected a non-negative integer, found ", v);
    return static_cast<uint64_t>(v);
  }
  uint64_t u = 0;
  read_attr(path_, a, H5T_NATIVE_UINT64, &u);
  return u;
}

double File::attr_double(const std::string& object, const std::string& name) const {
  Quiet quiet;
  OpenAttr a = open_attr(live(), path_, object, name);
  NA_CHECK(a.cls == H5T_FLOAT || a.cls == H5T_INTEGER, path_, a.what, ": expected a number, found ",
           class_name(a.cls));
  double v = 0;
  read_attr(path_, a, H5T_NATIVE_DOUBLE, &v);
  return v;
}

void File::remove_attr(const std::string& object, const std::string& name) {
  Quiet quiet;
  const hid_t f = live();
  NA_CHECK(has_attr(object, name), path_, attr_what(object, name), ": missing, nothing to remove");
  if (H5Adelete_by_name(f, object.empty() ? "/" : object.c_str(), name.c_str(), H5P_DEFAULT) < 0)
    throw Error(path_, attr_what(object, name) + ": cannot remove it" + reason());
}

std::vector<std::string> File::attr_names(const std::string& object) const {
  Quiet quiet;
  const hid_t f = live();
  const std::string where = object.empty() ? "/" : object;
  const H5I_type_t k = kind(f, object);
  NA_CHECK(k != H5I_BADID, path_, where, ": no such group or dataset");
  Handle o(H5Oopen(f, where.c_str(), H5P_DEFAULT), H5Oclose);
  if (!o.ok()) throw Error(path_, where + ": cannot open it" + reason());
  Handle cpl(k == H5I_GROUP ? H5Gget_create_plist(o.get()) : k == H5I_DATASET ? H5Dget_create_plist(o.get()) : -1,
             H5Pclose);
  unsigned flags = 0;
  if (cpl.ok()) H5Pget_attr_creation_order(cpl.get(), &flags);
  const H5_index_t index = (flags & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  std::vector<std::string> names;
  auto add = [](hid_t, const char* name, const H5A_info_t*, void* out) -> herr_t {
    static_cast<std::vector<std::string>*>(out)->emplace_back(name);
    return 0;
  };
  if (H5Aiterate2(o.get(), index, H5_ITER_INC, nullptr, add, &names) < 0)
    throw Error(path_, where + ": cannot list its attributes" + reason());
  return names;
}

// ---- datasets ------------------------------------------------------------------------------

void File::write(const std::string& dataset, const Tensor& value) {
  Quiet quiet;
  const hid_t f = live();
  const std::string what = "dataset " + dataset;
  NA_CHECK(value.defined(), path_, what, ": the tensor has no storage");
  const std::vector<std::string> parts = split(dataset);
  NA_CHECK(!parts.empty(), path_, what, ": a dataset needs a name");
  make_groups(f, path_, parts, parts.size() - 1);
  NA_CHECK(H5Lexists(f, dataset.c_str(), H5P_DEFAULT) <= 0, path_, what, ": already exists");
  const int rank = value.rank();
  hsize_t dims[kMaxDims] = {};
  for (int i = 0; i < rank; ++i) dims[i] = static_cast<hsize_t>(value.dim(i));
  Handle space(rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, nullptr), H5Sclose);
  if (!space.ok()) throw Error(path_, what + ": cannot make a dataspace of shape " + value.shape().str() + reason());
  // Attributes written on the dataset later list in creation order, as on our groups.
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_attr_creation_order(dcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  Handle ds(H5Dcreate2(f, dataset.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
            H5Dclose);
  if (!ds.ok()) throw Error(path_, what + ": cannot create it" + reason());
  if (value.numel() > 0 && H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, value.data()) < 0)
    throw Error(path_, what + ": cannot write it" + reason());
}

Shape File::dataset_shape(const std::string& dataset) const {
  Quiet quiet;
  return open_dataset(live(), path_, dataset).shape;
}

Tensor File::read(const std::string& dataset) const {
  Tensor out = Tensor::empty(dataset_shape(dataset));
  read_into(dataset, out);
  return out;
}

void File::read_into(const std::string& dataset, const Tensor& out) const {
  Quiet quiet;
  OpenDataset d = open_dataset(live(), path_, dataset);
  const std::string what = "dataset " + dataset;
  NA_CHECK(out.defined(), path_, what, ": the destination tensor has no storage");
  NA_CHECK(d.shape == out.shape(), path_, what, ": shape ", d.shape, " expected ", out.shape());
  Handle type(H5Dget_type(d.ds.get()), H5Tclose);
  if (!type.ok()) throw Error(path_, what + ": cannot read its type" + reason());
  const H5T_class_t cls = H5Tget_class(type.get());
  NA_CHECK(cls == H5T_FLOAT, path_, what, ": expected float32 data, found ", class_name(cls));
  if (out.numel() > 0 && H5Dread(d.ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    throw Error(path_, what + ": cannot read it" + reason());
}

std::vector<std::string> File::datasets(const std::string& group) const {
  Quiet quiet;
  const hid_t f = live();
  const std::string where = group.empty() ? "/" : group;
  NA_CHECK(kind(f, group) == H5I_GROUP, path_, "group ", where, ": missing (or not a group)");
  Handle g(H5Gopen2(f, where.c_str(), H5P_DEFAULT), H5Gclose);
  if (!g.ok()) throw Error(path_, "group " + where + ": cannot open it" + reason());
  std::vector<std::string> out;
  list_datasets(g.get(), path_, where, "", out);
  return out;
}

}  // namespace na::h5
