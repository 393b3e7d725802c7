#include "experiment/yaml_section.h"

#include "integer_text.h"

namespace na {

std::string yaml_at(const std::string& where, const YAML::Node& n) {
  if (!n || n.Mark().line < 0) return where;
  return cat(where, ":", n.Mark().line + 1, ":", n.Mark().column + 1);
}

YamlSection::YamlSection(const YAML::Node& node, std::string name, std::string where)
    : node_(node ? node : YAML::Node(YAML::NodeType::Map)), name_(std::move(name)), where_(std::move(where)) {
  if (node_.IsNull()) node_ = YAML::Node(YAML::NodeType::Map);
  NA_CHECK(node_.IsMap(), yaml_at(where_, node_), "'", name_, "' must be a map of keys, e.g. ", name_,
           ": {key: value}");
}

void YamlSection::wrong_type(const std::string& key, const char* expected) const {
  YAML::Node v = lookup(key);
  throw Error(yaml_at(where_, v), cat(name_, ".", key, " must be ", expected, ", got '",
                                      v.IsScalar() ? v.Scalar() : std::string("a map or list"), "'"));
}

namespace {
template <class T>
T to_integer(const YAML::Node& v, const std::string& where, const std::string& name) {
  T x{};
  const std::string why = v.IsScalar() ? parse_integer(v.Scalar(), x) : "must be an integer, got 'a map or list'";
  if (!why.empty()) throw Error(yaml_at(where, v), cat(name, " ", why));
  return x;
}
}  // namespace

int64_t YamlSection::to_int64(const std::string& key, const YAML::Node& v) const {
  return to_integer<int64_t>(v, where_, name_ + "." + key);
}

uint64_t YamlSection::to_uint64(const std::string& key, const YAML::Node& v) const {
  return to_integer<uint64_t>(v, where_, name_ + "." + key);
}

int64_t YamlSection::get_int(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) {
  int64_t x = get<int64_t>(key, fallback);
  NA_CHECK(x >= lo && x <= hi, at(key), name_, ".", key, " must be ",
           hi == INT64_MAX ? cat(">= ", lo) : cat("in [", lo, ", ", hi, "]"), ", got ", x);
  return x;
}

double YamlSection::get_real(const std::string& key, double fallback, double lo, double hi) {
  double x = get<double>(key, fallback);
  NA_CHECK(x >= lo && x <= hi, at(key), name_, ".", key, " must be in [", lo, ", ", hi, "], got ", x);
  return x;
}

std::string YamlSection::get_choice(const std::string& key, const std::string& fallback,
                                    const std::set<std::string>& choices) {
  std::string x = get<std::string>(key, fallback);
  if (choices.count(x)) return x;
  std::string valid;
  for (const std::string& c : choices) valid += (valid.empty() ? "" : ", ") + c;
  throw Error(at(key), cat(name_, ".", key, " '", x, "' is not one of: ", valid));
}

YAML::Node YamlSection::node(const std::string& key) {
  asked_.insert(key);
  return lookup(key);
}

void YamlSection::finish() const {
  for (const auto& kv : node_) {
    std::string key = kv.first.Scalar();
    if (asked_.count(key)) continue;
    std::string valid;
    for (const std::string& k : asked_) valid += (valid.empty() ? "" : ", ") + k;
    // A key merged in from an override has no position of its own; its value does.
    const YAML::Node& at = kv.first.Mark().line >= 0 ? kv.first : kv.second;
    throw Error(yaml_at(where_, at), cat(name_, ": unknown key '", key, "'; valid keys: ", valid));
  }
}

std::string YamlSection::at(const std::string& key) const {
  YAML::Node v = lookup(key);
  return yaml_at(where_, v ? v : node_);
}

}  // namespace na
