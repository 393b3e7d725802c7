// The experiment's comparison table: one row per run, as Markdown (printed and summary.md)
// and CSV (summary.csv, for plotting).
#pragma once
#include <string>
#include <vector>

#include "train/trainer.h"

namespace na {

std::string summary_markdown(const std::string& experiment, const std::vector<RunSummary>& runs);
std::string summary_csv(const std::vector<RunSummary>& runs);

}  // namespace na
