// Integer options of `nanoattn bench` read by the same rule as YAML integers (integer_text.h):
// CLI11 alone turns 99999999999999999999 into INT64_MAX without a word, and refuses 1e3.
#pragma once
#include <CLI/CLI.hpp>

#include "integer_text.h"

namespace na::cli {

// A transform: the text becomes the plain decimal of its value, or the option is refused with
// the reason ("must be an integer, got '2.5' (a fraction: ...)").
template <class T>
CLI::Validator integer_option() {
  return CLI::Validator(
      [](std::string& text) {
        T v{};
        std::string why = parse_integer(text, v);
        if (why.empty()) text = std::to_string(v);
        return why;
      },
      "");
}

}  // namespace na::cli
