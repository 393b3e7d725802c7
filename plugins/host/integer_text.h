// One rule for every integer a user types (YAML values, --set, plugin options, bench --option):
// a whole number or nothing. Accepted: decimal (12, -3, +7), hexadecimal (0x1F), and a decimal
// point or exponent whose value is exactly a whole number (2.0, 1e9, 1.5e3). Refused with the
// reason: a fraction (2.5, 1e-3) is never rounded, and a value outside the type is never
// wrapped or clamped. Header-only: the experiment loader (trainers) uses it too.
#pragma once
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

#include "nanoattn/error.h"

namespace na {

namespace integer_text {

enum class Kind { Ok, NotANumber, Fraction, TooLarge };

struct Parsed {
  Kind kind = Kind::NotANumber;
  bool negative = false;
  uint64_t magnitude = 0;
};

// Exactly, from the digits: value = digits x 10^exp10 (no floating point, so 2.0000000000000001
// is a fraction, not 2).
inline Parsed decimal(std::string_view s, bool negative) {
  std::string digits;
  int64_t exp10 = 0;
  size_t i = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) digits += s[i];
  if (i < s.size() && s[i] == '.')
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, --exp10) digits += s[i];
  if (digits.empty()) return {};
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    bool negative_exp = false;
    if (++i < s.size() && (s[i] == '+' || s[i] == '-')) negative_exp = s[i++] == '-';
    if (i == s.size()) return {};
    int64_t x = 0;  // capped: 1e99999999999 is too large either way, and the cap cannot overflow
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) x = std::min<int64_t>(x * 10 + (s[i] - '0'), 1 << 30);
    exp10 += negative_exp ? -x : x;
  }
  if (i != s.size()) return {};
  const size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return {Kind::Ok, negative, 0};  // 0, 0.0, 0e7
  digits.erase(0, first);
  while (digits.back() == '0') {
    digits.pop_back();
    ++exp10;
  }
  if (exp10 < 0) return {Kind::Fraction, negative, 0};
  if (static_cast<int64_t>(digits.size()) + exp10 > 20) return {Kind::TooLarge, negative, 0};  // > 2^64
  digits.append(static_cast<size_t>(exp10), '0');
  uint64_t v = 0;
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (r.ec == std::errc::result_out_of_range) return {Kind::TooLarge, negative, 0};
  return {Kind::Ok, negative, v};
}

inline Parsed parse(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    uint64_t v = 0;
    auto r = std::from_chars(s.data() + 2, s.data() + s.size(), v, 16);
    if (r.ptr != s.data() + s.size()) return {};
    if (r.ec == std::errc::result_out_of_range) return {Kind::TooLarge, negative, 0};
    return {r.ec == std::errc() ? Kind::Ok : Kind::NotANumber, negative, v};
  }
  return decimal(s, negative);
}

// " (a fraction: give a whole number, e.g. 2 or 3)" for 2.5.
inline std::string fraction_hint(const std::string& text) {
  const double d = std::strtod(text.c_str(), nullptr);
  // Near-whole values (2.0000000000000001) and huge ones round to a whole double: no example.
  if (!(std::fabs(d) < 1e15) || std::floor(d) == std::ceil(d)) return " (a fraction: give a whole number)";
  return cat(" (a fraction: give a whole number, e.g. ", static_cast<int64_t>(std::floor(d)), " or ",
             static_cast<int64_t>(std::ceil(d)), ")");
}

}  // namespace integer_text

// Reads `text` as an integer of type T into `out`. Returns "" on success, else the complaint to
// put after the key's name: "must be an integer, got '2.5' (a fraction: give a whole number,
// e.g. 2 or 3)", or "... (out of range: it must be between 0 and 18446744073709551615)".
template <class T>
std::string parse_integer(const std::string& text, T& out) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
  using namespace integer_text;
  const std::string got = cat("must be an integer, got '", text, "'");
  const Parsed p = parse(text);
  const std::string range = cat(" (out of range: it must be between ", +std::numeric_limits<T>::min(), " and ",
                                +std::numeric_limits<T>::max(), ")");
  switch (p.kind) {
    case Kind::NotANumber: return got;
    case Kind::Fraction: return got + fraction_hint(text);
    case Kind::TooLarge: return got + range;
    case Kind::Ok: break;
  }
  if (p.magnitude == 0) {
    out = 0;
    return "";
  }
  if constexpr (std::is_signed_v<T>) {
    // -magnitude fits T when magnitude - 1 <= -(min + 1); computed so that nothing overflows.
    if (p.negative) {
      if (p.magnitude - 1 > static_cast<uint64_t>(-(std::numeric_limits<T>::min() + 1))) return got + range;
      out = static_cast<T>(-static_cast<T>(p.magnitude - 1) - 1);
      return "";
    }
  } else if (p.negative) {
    return got + range;
  }
  if (p.magnitude > static_cast<uint64_t>(std::numeric_limits<T>::max())) return got + range;
  out = static_cast<T>(p.magnitude);
  return "";
}

}  // namespace na
