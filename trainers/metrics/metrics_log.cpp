// Metrics files: numbers in the shortest text that reads back as the same double
// (std::to_chars), so the files lose nothing and stay short ("0.1", not "0.10000000000000001").
#include "metrics/metrics_log.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nanoattn/error.h"

namespace na {

namespace fs = std::filesystem;

namespace {

std::string number(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string csv_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return number(v);
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t comma; (comma = line.find(',', start)) != std::string::npos; start = comma + 1)
    out.push_back(line.substr(start, comma - start));
  out.push_back(line.substr(start));
  return out;
}

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// A fresh log's TensorBoard folder loses the event files of earlier runs, as metrics.jsonl is
// truncated: TensorBoard would otherwise show both runs' points.
void remove_event_files(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind("events.out.tfevents.", 0) != 0) continue;
    fs::remove(entry.path(), ec);
    NA_CHECK(!ec, entry.path().string(), "cannot remove an earlier run's event file: ", ec.message());
  }
}

// The file's complete lines (none if it does not exist). A last line without its newline was
// cut short by a kill and is left out.
std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  if (!fs::exists(path)) return lines;
  std::ifstream in(path, std::ios::binary);
  NA_CHECK(in, path, "cannot open the metrics file to resume it");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(text.substr(start, nl - start));
  return lines;
}

int64_t csv_step(const std::string& line, const std::string& path, size_t line_no) {
  const size_t end = std::min(line.find(','), line.size());
  int64_t step = 0;
  const auto r = std::from_chars(line.data(), line.data() + end, step);
  NA_CHECK(r.ec == std::errc() && r.ptr == line.data() + end, path, "line ", line_no,
           ": cannot read the step from \"", line, "\"");
  return step;
}

int64_t jsonl_step(const std::string& line, const std::string& path, size_t line_no) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, cat("line ", line_no, ": not JSON: ", e.what()));
  }
  NA_CHECK(j.is_object() && j.contains("step") && j["step"].is_number_integer(), path, "line ",
           line_no, ": no integer \"step\" in ", line);
  return j["step"].get<int64_t>();
}

void write_or_throw(std::FILE* f, const std::string& text, const std::string& path) {
  NA_CHECK(std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0, path,
           "cannot write the metrics file: ", std::strerror(errno));
}

// Replaces `path` with `text` so that a crash leaves either the old or the new file: the text
// goes to a temporary file, is synced, and is renamed over the original.
void rewrite_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(tmp.c_str(), "wb"), &std::fclose);
    NA_CHECK(f, tmp, "cannot create the file: ", std::strerror(errno));
    write_or_throw(f.get(), text, tmp);
    NA_CHECK(fsync(fileno(f.get())) == 0, tmp, "cannot sync the file: ", std::strerror(errno));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  NA_CHECK(!ec, path, "cannot replace the file with ", tmp, ": ", ec.message());
}

}  // namespace

MetricsLog::MetricsLog(const std::string& dir, std::vector<std::string> columns, bool tensorboard,
                       int64_t resume_step, std::vector<std::string> tb_tags)
    : columns_(std::move(columns)), tb_tags_(std::move(tb_tags)), jsonl_(nullptr, &std::fclose),
      csv_(nullptr, &std::fclose) {
  if (tb_tags_.empty()) tb_tags_ = columns_;
  NA_CHECK(tb_tags_.size() == columns_.size(), "MetricsLog", tb_tags_.size(), " TensorBoard tags for ",
           columns_.size(), " columns");
  for (size_t i = 0; i < columns_.size(); ++i) {
    const std::string& c = columns_[i];
    NA_CHECK(!c.empty() && c != "step" && c.find_first_of(",\"\r\n") == std::string::npos,
             "MetricsLog", "column name \"", c,
             "\" must be non-empty, not \"step\", and free of commas, quotes and line breaks");
    for (size_t k = 0; k < i; ++k)
      NA_CHECK(columns_[k] != c, "MetricsLog", "column \"", c, "\" is given twice");
    try {
      json_keys_.push_back(nlohmann::json(c).dump());
    } catch (const nlohmann::json::exception& e) {
      throw Error("MetricsLog", cat("column name \"", c, "\" is not UTF-8: ", e.what()));
    }
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  NA_CHECK(!ec, dir, "cannot create the metrics folder: ", ec.message());
  jsonl_path_ = (fs::path(dir) / "metrics.jsonl").string();
  csv_path_ = (fs::path(dir) / "metrics.csv").string();
  const std::string header = "step" + std::string(columns_.empty() ? "" : ",") + join(columns_, ",");

  if (resume_step < 0) {
    jsonl_.reset(std::fopen(jsonl_path_.c_str(), "wb"));
    NA_CHECK(jsonl_, jsonl_path_, "cannot create the metrics file: ", std::strerror(errno));
    csv_.reset(std::fopen(csv_path_.c_str(), "wb"));
    NA_CHECK(csv_, csv_path_, "cannot create the metrics file: ", std::strerror(errno));
    write_or_throw(csv_.get(), header + "\n", csv_path_);
  } else {
    // Keep the records up to the checkpoint; the resumed run logs the rest again.
    std::string csv_text = header + "\n", jsonl_text;
    const std::vector<std::string> csv_lines = read_lines(csv_path_);
    // Where each old column's cells go: the identity, or (an older nanoattn logged fewer
    // columns) their places under the new header.
    std::vector<size_t> to;
    if (!csv_lines.empty() && csv_lines[0] != header) {
      const std::vector<std::string> old = split(csv_lines[0]);
      for (size_t i = 0; i < old.size(); ++i) {
        size_t k = 0;
        while (k < columns_.size() && columns_[k] != old[i]) ++k;
        NA_CHECK(i == 0 ? old[i] == "step" : k < columns_.size(), csv_path_, "its header \"", csv_lines[0],
                 "\" differs from this run's \"", header, "\" by more than added columns (",
                 i == 0 ? "it does not start with step" : "this run does not log " + old[i],
                 "): a resumed run must log the same columns");
        to.push_back(i == 0 ? 0 : k + 1);
      }
    }
    for (size_t i = 1; i < csv_lines.size(); ++i) {
      const int64_t step = csv_step(csv_lines[i], csv_path_, i + 1);
      if (step > resume_step) continue;
      last_step_ = std::max(last_step_, step);
      if (to.empty()) {
        csv_text += csv_lines[i] + "\n";
        continue;
      }
      const std::vector<std::string> cells = split(csv_lines[i]);
      NA_CHECK(cells.size() == to.size(), csv_path_, "line ", i + 1, " has ", cells.size(), " cells, its header ",
               to.size());
      std::vector<std::string> row(columns_.size() + 1);
      for (size_t c = 0; c < cells.size(); ++c) row[to[c]] = cells[c];
      csv_text += join(row, ",") + "\n";
    }
    const std::vector<std::string> jsonl_lines = read_lines(jsonl_path_);
    for (size_t i = 0; i < jsonl_lines.size(); ++i) {
      const int64_t step = jsonl_step(jsonl_lines[i], jsonl_path_, i + 1);
      if (step <= resume_step) jsonl_text += jsonl_lines[i] + "\n", last_step_ = std::max(last_step_, step);
    }
    rewrite_atomically(csv_path_, csv_text);
    rewrite_atomically(jsonl_path_, jsonl_text);
    jsonl_.reset(std::fopen(jsonl_path_.c_str(), "ab"));
    NA_CHECK(jsonl_, jsonl_path_, "cannot open the metrics file: ", std::strerror(errno));
    csv_.reset(std::fopen(csv_path_.c_str(), "ab"));
    NA_CHECK(csv_, csv_path_, "cannot open the metrics file: ", std::strerror(errno));
  }
  if (tensorboard) {
    const std::string tb_dir = (fs::path(dir) / "tensorboard").string();
    if (resume_step < 0) remove_event_files(tb_dir);
    tb_ = std::make_unique<EventWriter>(tb_dir);
    if (resume_step >= 0) {
      tb_->session_start(resume_step + 1, now_seconds());
      tb_->flush();
    }
  }
}

void MetricsLog::tensorboard_text(const std::string& tag, int64_t step, const std::string& markdown) {
  if (!tb_) return;
  tb_->text(tag, step, markdown, now_seconds());
  tb_->flush();
}

MetricsLog::~MetricsLog() = default;

void MetricsLog::log(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  NA_CHECK(step >= 0, "MetricsLog::log", "step ", step, " is negative");
  NA_CHECK(step >= last_step_, "MetricsLog::log", "step ", step, " comes after step ", last_step_,
           ": steps must not decrease");
  std::vector<const double*> row(columns_.size(), nullptr);
  for (const auto& [name, value] : values) {
    size_t c = 0;
    while (c < columns_.size() && columns_[c] != name) ++c;
    NA_CHECK(c < columns_.size(), "MetricsLog::log", "unknown metric \"", name,
             "\"; the columns are: ", join(columns_, ", "));
    NA_CHECK(row[c] == nullptr, "MetricsLog::log", "metric \"", name, "\" is given twice at step ", step);
    row[c] = &value;
  }
  std::string json = "{\"step\":" + std::to_string(step), csv = std::to_string(step);
  for (size_t c = 0; c < columns_.size(); ++c) {
    csv += ',';
    if (!row[c]) continue;
    const double v = *row[c];
    json += "," + json_keys_[c] + ":" + (std::isfinite(v) ? number(v) : "null");
    csv += csv_number(v);
  }
  write_or_throw(jsonl_.get(), json + "}\n", jsonl_path_);
  write_or_throw(csv_.get(), csv + "\n", csv_path_);
  if (tb_) {
    const double now = now_seconds();
    for (size_t c = 0; c < columns_.size(); ++c)
      if (row[c]) tb_->scalar(tb_tags_[c], step, *row[c], now);
    tb_->flush();
  }
  last_step_ = step;
}

}  // namespace na
