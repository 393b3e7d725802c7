#include "train/summary_table.h"

#include <cmath>
#include <cstdio>

#include "nanoattn/error.h"

namespace na {
namespace {

std::string num(double x, const char* fmt) {
  if (!std::isfinite(x)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, x);
  return buf;
}

std::string duration(double s) {
  if (!std::isfinite(s)) return "-";
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.1fs", s);
  else std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  return buf;
}

}  // namespace

std::string summary_markdown(const std::string& experiment, const std::vector<RunSummary>& runs) {
  const std::string unit = runs.empty() ? "bpc" : runs[0].unit;
  std::vector<std::vector<std::string>> rows = {
      {"run", "attention", "params", "steps", "val " + unit, "test " + unit, "tokens/s", "train time"}};
  // With compare_to: one more column, KL(P_ref || P_run) over val in bits per token, headed by
  // the reference when all runs share one, else each cell names its reference.
  std::string ref;
  bool one_ref = true;
  for (const RunSummary& r : runs)
    if (!r.compare_to.empty()) {
      one_ref = one_ref && (ref.empty() || ref == r.compare_to);
      ref = r.compare_to;
    }
  const std::string per = unit == "bpc" ? "bits/char" : "bits/word";
  if (!ref.empty()) rows[0].push_back(one_ref ? "KL vs " + ref + " (" + per + ")" : "KL vs ref (" + per + ")");
  for (const RunSummary& r : runs) {
    // With eval.keep_best the held-out numbers are the best checkpoint's: show its val and step.
    const bool at_best = r.test_at_best && r.best_step != r.steps;
    const std::string val = at_best ? num(r.best_val_bits, "%.4f") + " (best: step " + std::to_string(r.best_step) + ")"
                                    : num(r.val_bits, "%.4f");
    rows.push_back({r.run, r.plugins, std::to_string(r.params),
                    std::to_string(r.steps) + (r.finished ? "" : " (stopped)"), val,
                    num(r.test_bits, "%.4f"), num(r.tokens_per_s, "%.0f"), duration(r.train_seconds)});
    if (!ref.empty())
      rows.back().push_back(r.compare_to.empty() ? "" : num(r.kl_vs_ref, "%.4f") + (one_ref ? "" : " vs " + r.compare_to));
  }
  std::vector<size_t> width(rows[0].size(), 3);
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  auto line = [&](const std::vector<std::string>& row) {
    std::string s = "|";
    for (size_t c = 0; c < row.size(); ++c) {
      const bool right = c >= 2;  // numbers right-aligned
      const std::string pad(width[c] - row[c].size(), ' ');
      s += " " + (right ? pad + row[c] : row[c] + pad) + " |";
    }
    return s + "\n";
  };
  std::string out = "## " + experiment + "\n\n" + line(rows[0]) + "|";
  for (size_t c = 0; c < width.size(); ++c) out += std::string(width[c] + 1, '-') + (c >= 2 ? ":|" : "-|");
  out += "\n";
  for (size_t i = 1; i < rows.size(); ++i) out += line(rows[i]);
  return out;
}

std::string summary_csv(const std::vector<RunSummary>& runs) {
  auto cell = [](double x, const char* fmt) { return std::isfinite(x) ? num(x, fmt) : std::string(); };
  std::string out =
      "run,attention,params,steps,finished,unit,val,test,val_ppl,test_ppl,tokens_per_s,train_seconds,compare_to,"
      "kl_vs_ref,best_val,best_step\n";
  for (const RunSummary& r : runs)
    out += cat(r.run, ",", r.plugins, ",", r.params, ",", r.steps, ",", r.finished ? 1 : 0, ",", r.unit, ",",
               cell(r.val_bits, "%.6f"), ",", cell(r.test_bits, "%.6f"), ",", cell(r.val_ppl, "%.6f"), ",",
               cell(r.test_ppl, "%.6f"), ",", cell(r.tokens_per_s, "%.1f"), ",", cell(r.train_seconds, "%.2f"), ",",
               r.compare_to, ",", cell(r.kl_vs_ref, "%.6f"), ",", cell(r.best_val_bits, "%.6f"), ",", r.best_step, "\n");
  return out;
}

}  // namespace na
