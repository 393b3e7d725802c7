// Typed option values of plugins.
#include <sstream>

#include "nanoattn/attention.h"

namespace na {

const char* option_type_name(OptionType t) {
  switch (t) {
    case OptionType::Int: return "int";
    case OptionType::Float: return "float";
    case OptionType::Bool: return "bool";
    case OptionType::String: return "string";
  }
  return "?";
}

std::string option_value_str(const OptionValue& v) {
  if (auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  std::ostringstream os;
  os << std::get<double>(v);
  return os.str();
}

const OptionValue& Options::get(const std::string& name) const {
  auto it = values_.find(name);
  NA_CHECK(it != values_.end(), "Options", "no option '", name,
           "' was resolved: declare it in the plugin's PluginInfo::options");
  return it->second;
}

namespace {
template <class T>
const T& typed(const OptionValue& v, const std::string& name, const char* want) {
  const T* p = std::get_if<T>(&v);
  NA_CHECK(p != nullptr, "Options", "option '", name, "' is not of type ", want);
  return *p;
}
}  // namespace

int64_t Options::get_int(const std::string& name) const { return typed<int64_t>(get(name), name, "int"); }
double Options::get_float(const std::string& name) const { return typed<double>(get(name), name, "float"); }
bool Options::get_bool(const std::string& name) const { return typed<bool>(get(name), name, "bool"); }
const std::string& Options::get_string(const std::string& name) const {
  return typed<std::string>(get(name), name, "string");
}

}  // namespace na
