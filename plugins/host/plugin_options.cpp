#include "plugin_options.h"

#include <algorithm>
#include <cstdlib>

#include "integer_text.h"

namespace na {

namespace {

std::string choices_str(const OptionSpec& s) {
  std::string c;
  for (const std::string& v : s.choices) c += (c.empty() ? "" : "|") + v;
  return c;
}

// Parses one value of `spec`'s type from its text; throws naming `where` and the option.
OptionValue parse_value(const PluginInfo& info, const OptionSpec& spec, const std::string& text,
                        const std::string& where) {
  auto complain = [&](const std::string& what) -> OptionValue {
    throw Error(where, cat("option '", spec.name, "' of plugin '", info.name, "' ", what, ".\nValid options:\n",
                           describe_options(info)));
  };
  auto fail = [&](const std::string& want) { return complain(cat("must be ", want, ", got '", text, "'")); };
  switch (spec.type) {
    case OptionType::Int: {
      int64_t v = 0;
      if (std::string why = parse_integer(text, v); !why.empty()) return complain(why);
      return v;
    }
    case OptionType::Float: {
      char* end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size()) return fail("a number");
      return v;
    }
    case OptionType::Bool:
      if (text == "true") return true;
      if (text == "false") return false;
      return fail("true or false");
    case OptionType::String:
      if (!spec.choices.empty() &&
          std::find(spec.choices.begin(), spec.choices.end(), text) == spec.choices.end())
        return fail("one of " + choices_str(spec));
      return text;
  }
  return fail("valid");
}

const OptionSpec* find_spec(const PluginInfo& info, const std::string& key) {
  for (const OptionSpec& s : info.options)
    if (s.name == key) return &s;
  return nullptr;
}

Options defaults(const PluginInfo& info) {
  Options o;
  for (const OptionSpec& s : info.options) o.set(s.name, s.default_value);
  return o;
}

[[noreturn]] void unknown(const PluginInfo& info, const std::string& key, const std::string& where) {
  throw Error(where, cat("plugin '", info.name, "' has no option '", key, "'. Valid options:\n",
                         info.options.empty() ? std::string("  (none)\n") : describe_options(info)));
}

std::string mark(const YAML::Node& n, const std::string& where) {
  YAML::Mark m = n.Mark();
  if (m.line < 0) return where;
  return cat(where, ":", m.line + 1, ":", m.column + 1);
}

}  // namespace

std::string describe_options(const PluginInfo& info) {
  std::string s;
  for (const OptionSpec& o : info.options) {
    s += cat("  ", o.name, " (", option_type_name(o.type), ", default ",
             option_value_str(o.default_value));
    if (!o.choices.empty()) s += ", one of " + choices_str(o);
    s += "): " + o.doc + "\n";
  }
  return s;
}

Options resolve_options(const PluginInfo& info, const YAML::Node& node, const std::string& where) {
  Options o = defaults(info);
  if (!node || node.IsNull()) return o;
  NA_CHECK(node.IsMap(), mark(node, where), "the options of plugin '", info.name,
           "' must be a map of name: value. Valid options:\n", describe_options(info));
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const OptionSpec* spec = find_spec(info, key);
    if (!spec) unknown(info, key, mark(kv.first, where));
    NA_CHECK(kv.second.IsScalar(), mark(kv.second, where), "option '", key, "' of plugin '",
             info.name, "' must be a single ", option_type_name(spec->type), " value");
    o.set(key, parse_value(info, *spec, kv.second.Scalar(), mark(kv.second, where)));
  }
  return o;
}

Options resolve_options(const PluginInfo& info, const std::map<std::string, std::string>& given,
                        const std::string& where) {
  Options o = defaults(info);
  for (const auto& [key, text] : given) {
    const OptionSpec* spec = find_spec(info, key);
    if (!spec) unknown(info, key, where);
    o.set(key, parse_value(info, *spec, text, where));
  }
  return o;
}

}  // namespace na
