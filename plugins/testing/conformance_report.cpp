// The conformance results as a compact table, then the detail of each failure.
#include <cstdio>

#include "nanoattn/conformance.h"

namespace na::testing {

std::string format_results(const std::vector<CheckResult>& results) {
  size_t wc = 5, wv = 7;
  for (const CheckResult& r : results) wc = std::max(wc, r.check.size()), wv = std::max(wv, r.variant.size());
  auto row = [&](const std::string& c, const std::string& v, const std::string& e, const std::string& b,
                 const std::string& ok) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "%-*s  %-*s  %10s  %10s  %s\n", int(wc), c.c_str(), int(wv), v.c_str(), e.c_str(),
                  b.c_str(), ok.c_str());
    return std::string(buf);
  };
  auto num = [](double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, x == 0 ? "0" : "%.3g", x);
    return std::string(buf);
  };
  std::string out = row("check", "variant", "error", "bound", "result");
  for (const CheckResult& r : results) out += row(r.check, r.variant, num(r.error), num(r.bound), r.ok ? "pass" : "FAIL");
  for (const CheckResult& r : results)
    if (!r.ok) out += "\nFAIL " + r.check + " " + r.variant + ": " + r.detail + "\n";
  return out;
}

}  // namespace na::testing
