// A run's metrics on disk: <dir>/metrics.jsonl, <dir>/metrics.csv and, when asked, TensorBoard
// scalars under <dir>/tensorboard/. The trainer decides the columns; README.md gives the formats.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "metrics/tensorboard.h"

namespace na {

// metrics.jsonl: one JSON object per record, {"step":..., <present values in column order>}.
// metrics.csv: header "step," + columns; absent values are empty cells. TensorBoard: one scalar
// per present value, tagged as the constructor says. Every record is flushed before log() returns.
class MetricsLog {
 public:
  // Column names must be distinct, not "step", non-empty and free of commas, quotes and line
  // breaks (they are CSV header cells). The folder is created if needed.
  // resume_step < 0: start fresh (both files truncated). resume_step >= 0: a resumed run;
  // records with step > resume_step (logged after the checkpoint the run resumes from, by a run
  // that was then killed) are dropped from jsonl/csv by rewriting them atomically (temp +
  // rename), then new records are appended. A last line without its newline (cut by the kill)
  // is dropped too. A resumed CSV whose header differs from `columns`, or a line whose step
  // cannot be read, is an na::Error naming the file (and line).
  // TensorBoard: `tb_tags` (one per column, default the column names) name the scalars, e.g.
  // "train/loss". A fresh log removes <dir>/tensorboard's old event files (as it truncates the
  // other files); a resumed one starts its event file with a SessionLog START at resume_step + 1,
  // so TensorBoard drops the killed run's points after the checkpoint. A resumed CSV written
  // with fewer columns (an older nanoattn) is rewritten under the new header, cells moved by name.
  MetricsLog(const std::string& dir, std::vector<std::string> columns, bool tensorboard,
             int64_t resume_step = -1, std::vector<std::string> tb_tags = {});
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // Steps must not decrease (two records may share a step, e.g. training and validation
  // values). A name not among the columns is an na::Error listing the columns; so is a name
  // given twice. Non-finite values are written as null (JSON) and nan / inf / -inf (CSV).
  void log(int64_t step, const std::vector<std::pair<std::string, double>>& values);

  const std::vector<std::string>& columns() const { return columns_; }
  const std::string& jsonl_path() const { return jsonl_path_; }
  const std::string& csv_path() const { return csv_path_; }
  // Null when TensorBoard output was not asked for.
  const EventWriter* tensorboard() const { return tb_.get(); }
  // A Markdown text summary in TensorBoard (nothing without it), e.g. the resolved settings.
  void tensorboard_text(const std::string& tag, int64_t step, const std::string& markdown);

 private:
  using File = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

  std::vector<std::string> columns_, json_keys_;  // json_keys_: the names as JSON strings
  std::vector<std::string> tb_tags_;
  std::string jsonl_path_, csv_path_;
  File jsonl_, csv_;
  std::unique_ptr<EventWriter> tb_;
  int64_t last_step_ = -1;
};

}  // namespace na
