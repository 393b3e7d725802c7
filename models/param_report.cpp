#include "param_report.h"

#include <algorithm>
#include <cstdio>
#include <map>

namespace na {

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

namespace {

std::string pad_right(const std::string& s, size_t w) { return s.size() >= w ? s : s + std::string(w - s.size(), ' '); }
std::string pad_left(const std::string& s, size_t w) { return s.size() >= w ? s : std::string(w - s.size(), ' ') + s; }

std::string percent(int64_t part, int64_t total) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", total > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(total) : 0.0);
  return buf;
}

}  // namespace

std::vector<ParamGroup> param_breakdown(const ParamStore& store) {
  std::map<std::string, ParamGroup> by_group;
  for (const Parameter* p : store.all()) {
    ParamGroup& g = by_group[store.group(*p)];
    g.group = store.group(*p);
    ++g.tensors;
    g.scalars += p->value().numel();
  }
  std::vector<ParamGroup> out;
  for (const std::string& name : param_groups())
    if (auto it = by_group.find(name); it != by_group.end()) out.push_back(it->second);
  return out;
}

std::string format_param_table(const ParamStore& store, bool per_tensor) {
  std::string s;
  if (per_tensor) {
    std::vector<std::vector<std::string>> rows = {{"parameter", "shape", "params", "group"}};
    for (const Parameter* p : store.all())
      rows.push_back({p->name(), cat(p->value().shape()), with_commas(p->value().numel()), store.group(*p)});
    size_t w[3] = {0, 0, 0};
    for (const auto& r : rows)
      for (int c = 0; c < 3; ++c) w[c] = std::max(w[c], r[c].size());
    for (const auto& r : rows)
      s += pad_right(r[0], w[0]) + "  " + pad_right(r[1], w[1]) + "  " + pad_left(r[2], w[2]) + "  " + r[3] + "\n";
    s += "\n";
  }
  const std::vector<ParamGroup> groups = param_breakdown(store);
  int64_t tensors = 0, total = 0;
  for (const ParamGroup& g : groups) tensors += g.tensors, total += g.scalars;
  std::vector<std::vector<std::string>> rows = {{"group", "tensors", "params", "%"}};
  for (const ParamGroup& g : groups)
    rows.push_back({g.group, std::to_string(g.tensors), with_commas(g.scalars), percent(g.scalars, total)});
  rows.push_back({"total", std::to_string(tensors), with_commas(total), percent(total, total)});
  size_t w[4] = {0, 0, 0, 0};
  for (const auto& r : rows)
    for (int c = 0; c < 4; ++c) w[c] = std::max(w[c], r[c].size());
  for (const auto& r : rows)
    s += pad_right(r[0], w[0]) + "  " + pad_left(r[1], w[1]) + "  " + pad_left(r[2], w[2]) + "  " + pad_left(r[3], w[3]) +
         "\n";
  return s;
}

}  // namespace na
