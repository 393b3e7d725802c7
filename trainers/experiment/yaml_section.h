// Reading one map of an experiment file with checked keys: every value read through get<T>()
// gets a typed error naming file:line:col, and finish() rejects keys nobody asked for, listing
// the valid ones.
#pragma once
#include <set>
#include <string>

#include <yaml-cpp/yaml.h>

#include "nanoattn/error.h"

namespace na {

// "exp.yaml:12:7" (or just `where` for nodes made in code, e.g. from --set).
std::string yaml_at(const std::string& where, const YAML::Node& n);

class YamlSection {
 public:
  // `name` is how errors call the map ("train", "data"). A null node reads as empty.
  YamlSection(const YAML::Node& node, std::string name, std::string where);

  template <class T>
  T get(const std::string& key, const T& fallback);
  // Like get<> but the key must be present.
  template <class T>
  T require(const std::string& key);
  // Numbers with a range check: lo <= x (and x <= hi when hi is given).
  int64_t get_int(const std::string& key, int64_t fallback, int64_t lo, int64_t hi = INT64_MAX);
  double get_real(const std::string& key, double fallback, double lo, double hi);
  std::string get_choice(const std::string& key, const std::string& fallback,
                         const std::set<std::string>& choices);
  YAML::Node node(const std::string& key);  // a nested map or list, unchecked (may be null)
  void finish() const;

  std::string at(const std::string& key) const;  // position of key's value, or of the map
  const std::string& where() const { return where_; }

 private:
  // Const lookup: yaml-cpp's non-const operator[] may insert the key.
  YAML::Node lookup(const std::string& key) const { return static_cast<const YAML::Node&>(node_)[key]; }
  [[noreturn]] void wrong_type(const std::string& key, const char* expected) const;
  // Integers by one rule everywhere (plugins/host/integer_text.h), not yaml-cpp's as<T>: a
  // fraction or an out-of-range value is refused, never rounded or wrapped.
  int64_t to_int64(const std::string& key, const YAML::Node& v) const;
  uint64_t to_uint64(const std::string& key, const YAML::Node& v) const;
  YAML::Node node_;
  std::string name_, where_;
  std::set<std::string> asked_;
};

template <class T>
T YamlSection::get(const std::string& key, const T& fallback) {
  asked_.insert(key);
  YAML::Node v = lookup(key);
  if (!v || v.IsNull()) return fallback;
  if constexpr (std::is_same_v<T, int64_t>) {
    return to_int64(key, v);
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    return to_uint64(key, v);
  } else {
    static_assert(!std::is_integral_v<T> || std::is_same_v<T, bool>, "read integers as int64_t or uint64_t");
    try {
      if (!v.IsScalar()) throw YAML::Exception(YAML::Mark(), "");
      return v.as<T>();
    } catch (const YAML::Exception&) {
      const char* expected = std::is_same_v<T, bool>        ? "true or false"
                             : std::is_floating_point_v<T> ? "a number"
                                                           : "a string";
      wrong_type(key, expected);
    }
  }
}

template <class T>
T YamlSection::require(const std::string& key) {
  NA_CHECK(lookup(key) && !lookup(key).IsNull(), yaml_at(where_, node_), name_, ": '", key, "' is required");
  return get<T>(key, T{});
}

}  // namespace na
