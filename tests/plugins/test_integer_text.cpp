// One rule for every integer a user types (integer_text.h): whole numbers in any plain form are
// read exactly; a fraction is refused, never rounded; a value outside the type is refused,
// never wrapped or clamped. Used by YAML (experiment, model, blocks, plugin options), --set and
// bench's options (the plugin options' use is tested in test_plugin_errors.cpp).
#include <doctest/doctest.h>

#include "integer_text.h"

using namespace na;

namespace {
template <class T>
std::string read(const std::string& text, T& out) {
  return parse_integer(text, out);
}
}  // namespace

TEST_CASE("integers: whole numbers in decimal, hexadecimal, or exact decimal and exponent forms") {
  const std::vector<std::pair<std::string, int64_t>> good = {
      {"0", 0},       {"-0", 0},     {"12", 12},          {"+7", 7},          {"-3", -3},
      {"017", 17},    {"0x1F", 31},  {"2.0", 2},          {"5.", 5},          {"1e9", 1000000000},
      {"1E3", 1000},  {"1.5e3", 1500}, {"-2.50e1", -25},   {"0e99999", 0},
      {"9223372036854775807", INT64_MAX}, {"-9223372036854775808", INT64_MIN}, {"9.223372036854775807e18", INT64_MAX}};
  for (const auto& [text, want] : good) {
    CAPTURE(text);
    int64_t v = 42;
    CHECK(read(text, v) == "");
    CHECK(v == want);
  }
  uint64_t u = 0;
  CHECK(read("18446744073709551615", u) == "");
  CHECK(u == UINT64_MAX);
  CHECK(read("1e19", u) == "");
  CHECK(u == 10000000000000000000ull);
}

TEST_CASE("integers: fractions, out-of-range values and other text are refused with the reason") {
  int64_t v = 42;
  CHECK(read("2.5", v) == "must be an integer, got '2.5' (a fraction: give a whole number, e.g. 2 or 3)");
  CHECK(read("25e-1", v) == "must be an integer, got '25e-1' (a fraction: give a whole number, e.g. 2 or 3)");
  CHECK(read("-0.5", v) == "must be an integer, got '-0.5' (a fraction: give a whole number, e.g. -1 or 0)");
  CHECK(read("1e-3", v) == "must be an integer, got '1e-3' (a fraction: give a whole number, e.g. 0 or 1)");
  // Exactly, not through a double (which would read 2.0000000000000001 as 2).
  CHECK(read("2.0000000000000001", v) == "must be an integer, got '2.0000000000000001' (a fraction: give a whole number)");
  const std::string i64 = " (out of range: it must be between -9223372036854775808 and 9223372036854775807)";
  CHECK(read("9223372036854775808", v) == "must be an integer, got '9223372036854775808'" + i64);
  CHECK(read("-9223372036854775809", v) == "must be an integer, got '-9223372036854775809'" + i64);
  CHECK(read("1e30", v) == "must be an integer, got '1e30'" + i64);
  CHECK(read("99999999999999999999999", v) == "must be an integer, got '99999999999999999999999'" + i64);
  CHECK(read("0x8000000000000000", v) == "must be an integer, got '0x8000000000000000'" + i64);
  CHECK(read("1e99999999999999999999", v) == "must be an integer, got '1e99999999999999999999'" + i64);
  for (const char* text : {"", "two", "12a", "1_000", "0o17", "1e", "1e+", "--1", ".inf", "nan", " 4", "0x", "4 "}) {
    CAPTURE(text);
    CHECK(read(text, v) == cat("must be an integer, got '", text, "'"));
  }
  CHECK(v == 42);  // never touched by a refused value
  uint64_t u = 7;
  CHECK(read("-1", u) == "must be an integer, got '-1' (out of range: it must be between 0 and 18446744073709551615)");
  CHECK(read("18446744073709551616", u) ==
        "must be an integer, got '18446744073709551616' (out of range: it must be between 0 and 18446744073709551615)");
  int32_t w = 0;
  CHECK(read("2147483648", w) == "must be an integer, got '2147483648' (out of range: it must be between -2147483648 and 2147483647)");
}
