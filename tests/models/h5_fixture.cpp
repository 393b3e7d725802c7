#include "h5_fixture.h"

#include <hdf5.h>

#include <sstream>

#include "nanoattn/error.h"

namespace na::testing {
namespace {

// Silences HDF5's own error stack printing while alive; we report errors ourselves.
class QuietH5 {
 public:
  QuietH5() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietH5() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// Closes an HDF5 handle with the given function at scope exit.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle& operator=(Handle&&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

std::string ctx(const std::string& file, const std::string& object) { return file + ":" + object; }

}  // namespace

std::string dims_str(const std::vector<int64_t>& dims) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < dims.size(); ++i) os << (i ? ", " : "") << dims[i];
  if (dims.size() == 1) os << ",";
  os << ")";
  return os.str();
}

H5File::H5File(const std::string& path) : path_(path) {
  QuietH5 quiet;
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  NA_CHECK(file_ >= 0, path, "cannot open as an HDF5 file (missing, unreadable or not HDF5)");
}

H5File::~H5File() {
  if (file_ >= 0) H5Fclose(static_cast<hid_t>(file_));
}

bool H5File::exists(const std::string& object) const {
  QuietH5 quiet;
  // Walk the path so that a missing intermediate group is "false", not an error.
  std::string prefix;
  size_t pos = 0;
  while (pos <= object.size()) {
    size_t next = object.find('/', pos);
    if (next == std::string::npos) next = object.size();
    if (next > pos) {
      prefix += '/';
      prefix.append(object, pos, next - pos);
      if (H5Lexists(static_cast<hid_t>(file_), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    }
    pos = next + 1;
  }
  return true;
}

H5Array H5File::read(const std::string& dataset) const {
  QuietH5 quiet;
  const std::string where = ctx(path_, dataset);
  NA_CHECK(exists(dataset), where, "no such dataset");
  Handle ds(H5Dopen2(static_cast<hid_t>(file_), dataset.c_str(), H5P_DEFAULT), H5Dclose);
  NA_CHECK(ds.ok(), where, "cannot open as a dataset (is it a group?)");
  Handle type(H5Dget_type(ds.get()), H5Tclose);
  NA_CHECK(type.ok(), where, "cannot read the datatype");
  const H5T_class_t cls = H5Tget_class(type.get());
  NA_CHECK(cls == H5T_INTEGER || cls == H5T_FLOAT, where,
           "expected an integer or floating-point dataset, got HDF5 type class ", static_cast<int>(cls));
  Handle space(H5Dget_space(ds.get()), H5Sclose);
  NA_CHECK(space.ok(), where, "cannot read the dataspace");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  NA_CHECK(rank >= 0, where, "not a simple dataspace");
  std::vector<hsize_t> ext(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), ext.data(), nullptr);
  H5Array out;
  int64_t n = 1;
  for (hsize_t e : ext) {
    out.dims.push_back(static_cast<int64_t>(e));
    n *= static_cast<int64_t>(e);
  }
  const hssize_t points = H5Sget_simple_extent_npoints(space.get());
  NA_CHECK(points == n, where, "dataspace has ", points, " points but extents ", dims_str(out.dims));
  out.data.resize(static_cast<size_t>(n));
  if (n > 0) {
    const herr_t st = H5Dread(ds.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data.data());
    NA_CHECK(st >= 0, where, "H5Dread to double failed");
  }
  return out;
}

std::vector<std::string> H5File::members(const std::string& group) const {
  QuietH5 quiet;
  const std::string where = ctx(path_, group);
  NA_CHECK(exists(group), where, "no such group");
  Handle g(H5Gopen2(static_cast<hid_t>(file_), group.c_str(), H5P_DEFAULT), H5Gclose);
  NA_CHECK(g.ok(), where, "cannot open as a group (is it a dataset?)");
  H5G_info_t info;
  NA_CHECK(H5Gget_info(g.get(), &info) >= 0, where, "cannot read the group info");
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    NA_CHECK(len >= 0, where, "cannot read the name of member ", i);
    std::string name(static_cast<size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<size_t>(len));
    names.push_back(std::move(name));
  }
  return names;  // H5_INDEX_NAME + H5_ITER_INC: already sorted
}

namespace {

struct Attr {
  Handle attr;
  Handle type;
  std::string where;
};

Attr open_attr(hid_t file, const std::string& path, const std::string& object, const std::string& name,
               bool exists) {
  std::string where = path + ":" + object + "@" + name;
  NA_CHECK(exists, path + ":" + object, "no such group or dataset (looking for attribute '", name, "')");
  const htri_t has = H5Aexists_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT);
  NA_CHECK(has > 0, where, "no such attribute");
  hid_t a = H5Aopen_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  NA_CHECK(a >= 0, where, "cannot open the attribute");
  hid_t t = H5Aget_type(a);
  Attr out{Handle(a, H5Aclose), Handle(t, H5Tclose), where};
  NA_CHECK(t >= 0, where, "cannot read the attribute's datatype");
  Handle space(H5Aget_space(a), H5Sclose);
  NA_CHECK(space.ok() && H5Sget_simple_extent_npoints(space.get()) == 1, where,
           "expected a scalar (one-element) attribute");
  return out;
}

}  // namespace

int64_t H5File::attr_int(const std::string& object, const std::string& name) const {
  QuietH5 quiet;
  Attr a = open_attr(static_cast<hid_t>(file_), path_, object, name, exists(object));
  NA_CHECK(H5Tget_class(a.type.get()) == H5T_INTEGER, a.where, "expected an integer attribute");
  int64_t v = 0;
  NA_CHECK(H5Aread(a.attr.get(), H5T_NATIVE_INT64, &v) >= 0, a.where, "H5Aread to int64 failed");
  return v;
}

double H5File::attr_double(const std::string& object, const std::string& name) const {
  QuietH5 quiet;
  Attr a = open_attr(static_cast<hid_t>(file_), path_, object, name, exists(object));
  const H5T_class_t cls = H5Tget_class(a.type.get());
  NA_CHECK(cls == H5T_FLOAT || cls == H5T_INTEGER, a.where, "expected a numeric attribute");
  double v = 0;
  NA_CHECK(H5Aread(a.attr.get(), H5T_NATIVE_DOUBLE, &v) >= 0, a.where, "H5Aread to double failed");
  return v;
}

std::string H5File::attr_string(const std::string& object, const std::string& name) const {
  QuietH5 quiet;
  Attr a = open_attr(static_cast<hid_t>(file_), path_, object, name, exists(object));
  NA_CHECK(H5Tget_class(a.type.get()) == H5T_STRING, a.where, "expected a string attribute");
  Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_cset(mem.get(), H5Tget_cset(a.type.get()));
  if (H5Tis_variable_str(a.type.get()) > 0) {
    H5Tset_size(mem.get(), H5T_VARIABLE);
    char* s = nullptr;
    NA_CHECK(H5Aread(a.attr.get(), mem.get(), &s) >= 0, a.where, "H5Aread of a variable-length string failed");
    std::string out = s ? s : "";
    if (s) H5free_memory(s);
    return out;
  }
  const size_t size = H5Tget_size(a.type.get());
  H5Tset_size(mem.get(), size + 1);  // room for the terminator whatever the padding
  H5Tset_strpad(mem.get(), H5T_STR_NULLTERM);
  std::string buf(size + 1, '\0');
  NA_CHECK(H5Aread(a.attr.get(), mem.get(), buf.data()) >= 0, a.where, "H5Aread of a fixed-length string failed");
  buf.resize(buf.find('\0') == std::string::npos ? buf.size() : buf.find('\0'));
  return buf;
}

}  // namespace na::testing
