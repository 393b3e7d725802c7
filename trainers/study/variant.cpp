#include "variant.h"

#include <cctype>

#include "nanoattn/error.h"

namespace na {

namespace {

bool key_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'; }

// Splits at `;` outside {}, [] and quotes.
std::vector<std::string> split_assignments(const std::string& s) {
  std::vector<std::string> out(1);
  int depth = 0;
  char quote = 0;
  for (char c : s) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    } else if (c == ';' && depth == 0) {
      out.emplace_back();
      continue;
    }
    out.back() += c;
  }
  return out;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

}  // namespace

Variant parse_variant(const std::string& text, const std::string& default_name) {
  const std::string what = cat("--vary '", text, "'");
  const std::string form = "give [NAME:]key.path=value[;key.path=value...], e.g. "
                           "dpfp3:model.attention={plugin: linear, options: {feature_map: dpfp, nu: 3}}";
  Variant v;
  v.text = text;
  v.name = default_name;
  std::string rest = text;
  // A name is what precedes a ':' that comes before the first '=' (a key path has no ':').
  const size_t eq = text.find('='), colon = text.find(':');
  if (colon != std::string::npos && (eq == std::string::npos || colon < eq)) {
    v.name = trim(text.substr(0, colon));
    rest = text.substr(colon + 1);
    NA_CHECK(!v.name.empty(), what, "the name before ':' is empty; ", form);
    for (char c : v.name)
      NA_CHECK(key_char(c), what, "the name '", v.name, "' may hold only letters, digits, _ - and .; ", form);
  }
  for (const std::string& piece : split_assignments(rest)) {
    const std::string a = trim(piece);
    if (a.empty()) continue;  // "a=1;" or "a=1;;b=2"
    const size_t e = a.find('=');
    NA_CHECK(e != std::string::npos && e > 0, what, "'", a, "' is not key.path=value; ", form);
    const std::string key = trim(a.substr(0, e));
    for (char c : key)
      NA_CHECK(key_char(c), what, "'", key, "' is not a key path (letters, digits, _ and -, joined by dots); ",
               form);
    v.assignments.push_back(key + "=" + a.substr(e + 1));
  }
  NA_CHECK(!v.assignments.empty(), what, "no assignment; ", form);
  return v;
}

}  // namespace na
