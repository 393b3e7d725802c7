#include "io/h5.h"

#include <hdf5.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "nanoattn/error.h"
#include "util/files.h"

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
  // A failed read or write comes as "file write failed: time = ..., filename = ..., errno = 28,
  // error message = 'No space left on device', buf = ...": keep what and why.
  const size_t time = desc.find(": time = "), msg = desc.find("error message = '");
  if (time != std::string::npos && msg != std::string::npos) {
    const size_t from = msg + 17, end = desc.find('\'', from);
    desc = desc.substr(0, time) + ": " + desc.substr(from, end == std::string::npos ? end : end - from);
  }
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
  hid_t release() { return std::exchange(id_, -1); }  // the caller closes it (and checks)

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

namespace {

// Ids whose H5Fclose failed: HDF5 1.10 crashes when such an id is closed again, by us or by
// its own exit handler, so they are never touched again (see close_library).
std::vector<hid_t>& unclosable() {
  static std::vector<hid_t> ids;
  return ids;
}

bool writable(hid_t id) {
  unsigned intent = 0;
  return H5Fget_intent(id, &intent) >= 0 && (intent & H5F_ACC_RDWR);
}

// A file-size limit (ulimit -f) fails writes as a full disk does; while alive, it is lifted (to
// the hard limit) so that what HDF5 writes to a discarded file in memory, or the size it sets
// when closing a file, cannot fail for that reason.
class LiftFileSizeLimit {
 public:
  LiftFileSizeLimit() {
    lifted_ = ::getrlimit(RLIMIT_FSIZE, &saved_) == 0 && saved_.rlim_cur != saved_.rlim_max;
    const rlimit none{saved_.rlim_max, saved_.rlim_max};
    if (lifted_) ::setrlimit(RLIMIT_FSIZE, &none);
  }
  ~LiftFileSizeLimit() {
    if (lifted_) ::setrlimit(RLIMIT_FSIZE, &saved_);
  }
  LiftFileSizeLimit(const LiftFileSizeLimit&) = delete;
  LiftFileSizeLimit& operator=(const LiftFileSizeLimit&) = delete;

 private:
  rlimit saved_{};
  bool lifted_ = false;
};

// Points an open file's descriptor at an anonymous in-memory file (File::discard), then flushes
// there until HDF5 is satisfied: the first flush after a failed one fails again, the next one
// succeeds, after which closing has nothing left to write.
void discard_file(hid_t id) {
  void* handle = nullptr;
  if (H5Fget_vfd_handle(id, H5P_DEFAULT, &handle) < 0 || !handle) return;
  const int fd = *static_cast<int*>(handle);  // the default (sec2) driver's handle is its descriptor
  const int mem = ::memfd_create("nanoattn-discarded", MFD_CLOEXEC);
  if (mem < 0) return;
  ::dup2(mem, fd);
  ::close(mem);
  if (!writable(id)) return;
  LiftFileSizeLimit lift;
  for (int attempt = 0; attempt < 4 && H5Fflush(id, H5F_SCOPE_LOCAL) < 0; ++attempt) {
  }
}

// Closes a file id, flushing it first: a failed flush can be cleaned up (by discarding the
// file), a failed H5Fclose cannot. Returns false, with HDF5's reason in `why`, if either failed.
bool close_file(hid_t id, std::string* why = nullptr) {
  bool ok = true;
  if (writable(id) && H5Fflush(id, H5F_SCOPE_LOCAL) < 0) {
    ok = false;
    if (why) *why = reason();
    discard_file(id);
  }
  LiftFileSizeLimit lift;
  if (H5Fclose(id) < 0) {
    if (ok && why) *why = reason();
    ok = false;
    unclosable().push_back(id);
  }
  return ok;
}

// Our own end of HDF5, at exit (HDF5's handler is off: H5dont_atexit): files still open are
// closed, then the library, unless a file could not be closed, in which case HDF5 would crash
// trying again and the process ends without closing it (the kernel closes the descriptors).
// Never in a static destructor.
void close_library() {
  {
    Quiet quiet;
    const ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE);
    std::vector<hid_t> ids(static_cast<size_t>(std::max<ssize_t>(n, 0)));
    if (n > 0) H5Fget_obj_ids(H5F_OBJ_ALL, H5F_OBJ_FILE, ids.size(), ids.data());
    for (hid_t id : ids)
      if (std::find(unclosable().begin(), unclosable().end(), id) == unclosable().end()) close_file(id);
  }
  if (unclosable().empty()) H5close();
}

void register_close_library() {
  static const bool registered = [] {
    H5dont_atexit();  // must come before the library starts (a no-op if something else started it)
    H5open();
    return std::atexit(close_library) == 0;
  }();
  (void)registered;
}

// Every file: closing it closes the objects still open in it; raw data is written by the call
// that writes it (no sieve buffer holding it until a close whose failure would go unseen).
Handle access_plist() {
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
  H5Pset_sieve_buf_size(fapl.get(), 0);
  return fapl;
}

// An empty file whose root group tracks creation order like every group this layer makes,
// made once in memory (the core driver: nothing touches the disk).
const std::vector<char>& empty_file_image() {
  static const std::vector<char> image = [] {
    Handle fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
    H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_attr_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    H5Pset_fapl_core(fapl.get(), 1 << 16, /*backing_store=*/false);
    Handle f(H5Fcreate("/dev/null/nanoattn-empty-file", H5F_ACC_TRUNC, fcpl.get(), fapl.get()), H5Fclose);
    // Flushed first: without it the image lacks the root group's header.
    const ssize_t n = f.ok() && H5Fflush(f.get(), H5F_SCOPE_GLOBAL) >= 0 ? H5Fget_file_image(f.get(), nullptr, 0) : -1;
    std::vector<char> out(static_cast<size_t>(std::max<ssize_t>(n, 0)));
    if (n <= 0 || H5Fget_file_image(f.get(), out.data(), out.size()) != n)
      throw Error("HDF5", "cannot make an empty file in memory" + reason());
    return out;
  }();
  return image;
}

// Writes the empty file to `path` with plain POSIX calls, whose errors we report ourselves.
void write_empty_file(const std::string& path) {
  const std::vector<char>& image = empty_file_image();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    fs::path dir = fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    NA_CHECK(fs::is_directory(dir, ec), path, "cannot create it: directory ", dir.string(), " does not exist");
    throw Error(path, cat("cannot create it (", std::strerror(err), ")",
                          err == EROFS || err == EACCES ? ": choose a writable folder" : ""));
  }
  int err = 0;
  for (size_t done = 0; done < image.size() && err == 0;) {
    const ssize_t w = ::write(fd, image.data() + done, image.size() - done);
    if (w > 0) done += static_cast<size_t>(w);
    else if (errno != EINTR) err = errno;
  }
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0) return;
  std::remove(path.c_str());
  throw Error(path, cat("cannot create it (", std::strerror(err), ")"));
}

}  // namespace

File File::open(const std::string& path, Mode mode) {
  register_close_library();  // first: it must run before any other HDF5 call
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
  Handle fapl = access_plist();
  const hid_t id = H5Fopen(path.c_str(), mode == Mode::Read ? H5F_ACC_RDONLY : H5F_ACC_RDWR, fapl.get());
  NA_CHECK(id >= 0, path, "an HDF5 file that HDF5 cannot open: it is truncated or corrupt (or locked by a writer)",
           reason());
  return File(path, id);
}

// Not H5Fcreate: when its own first write fails (a full disk), HDF5 1.10 keeps the half-made
// file open inside the library, with no id to close it by, and loops at exit. Opening a file
// we wrote leaves every later failure with an id we can close.
File File::create(const std::string& path) {
  register_close_library();  // first: it must run before any other HDF5 call
  Quiet quiet;
  write_empty_file(path);
  Handle fapl = access_plist();
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.get());
  if (id < 0) {
    const std::string why = reason();
    std::remove(path.c_str());
    throw Error(path, "cannot create it" + why);
  }
  return File(path, id);
}

File::File(File&& other) noexcept : path_(std::move(other.path_)), id_(std::exchange(other.id_, -1)) {}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    if (id_ >= 0) {
      Quiet quiet;
      close_file(id_);
    }
    path_ = std::move(other.path_);
    id_ = std::exchange(other.id_, -1);
  }
  return *this;
}

File::~File() {
  if (id_ >= 0) {
    Quiet quiet;
    close_file(id_);
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
  std::string why;
  if (!close_file(std::exchange(id_, -1), &why)) throw Error(path_, "closing the file failed" + why);
}

void File::discard() noexcept {
  if (id_ < 0) return;
  Quiet quiet;
  discard_file(id_);
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
  if (H5Dclose(ds.release()) < 0) throw Error(path_, what + ": cannot write it (closing failed)" + reason());
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
