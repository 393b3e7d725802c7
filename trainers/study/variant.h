// A candidate model written as overrides of a base experiment, on the command line:
//
//   [NAME:]key.path=value[;key.path=value...]
//
// e.g. "dpfp3:model.attention={plugin: linear, options: {feature_map: dpfp, nu: 3}}". Each
// assignment is --set syntax (experiment.h: apply_override); `;` separates them except inside
// brackets or quotes of a YAML value. NAME (letters, digits, _ - .) is what tables call it; a
// text without a name is named `default_name`.
#pragma once
#include <string>
#include <vector>

namespace na {

struct Variant {
  std::string name, text;                // text: as given, for errors
  std::vector<std::string> assignments;  // "key.path=value"
};

// Throws an error that quotes `text` and says what is wrong.
Variant parse_variant(const std::string& text, const std::string& default_name);

}  // namespace na
