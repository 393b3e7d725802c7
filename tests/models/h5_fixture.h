// Test-only reader for HDF5 reference fixtures (../shared/fixtures/*.h5), on the HDF5 C API.
// Every failure throws na::Error naming the file and the object path.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace na::testing {

// A dataset's values converted to double (row-major) and its extents ({} for a scalar).
struct H5Array {
  std::vector<double> data;
  std::vector<int64_t> dims;
  int64_t numel() const { return static_cast<int64_t>(data.size()); }
};

std::string dims_str(const std::vector<int64_t>& dims);  // "(3, 8, 11)"

class H5File {
 public:
  explicit H5File(const std::string& path);  // read-only
  ~H5File();
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;

  const std::string& path() const { return path_; }
  bool exists(const std::string& object) const;  // a group or dataset at that path
  // Any integer or floating-point dataset, converted by HDF5 to double.
  H5Array read(const std::string& dataset) const;
  // The names of a group's direct members, sorted.
  std::vector<std::string> members(const std::string& group) const;
  // Scalar attributes of a group or dataset (integer, float/int, string).
  int64_t attr_int(const std::string& object, const std::string& name) const;
  double attr_double(const std::string& object, const std::string& name) const;
  std::string attr_string(const std::string& object, const std::string& name) const;

 private:
  std::string path_;
  int64_t file_ = -1;  // hid_t
};

}  // namespace na::testing
