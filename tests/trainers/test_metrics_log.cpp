#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "metrics/metrics_log.h"
#include "nanoattn/error.h"
#include "scratch_dir.h"
#include "trainers/event_reader.h"

using namespace na;
using na::testing::read_bytes;
using na::testing::ScratchDir;
using na::testing::write_bytes;
namespace fs = std::filesystem;

namespace {
const double kNan = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();
}  // namespace

TEST_CASE("MetricsLog: jsonl and csv hold every record, in column order, flushed as logged") {
  ScratchDir dir("metrics_fresh");
  MetricsLog log(dir / "run", {"loss", "lr", "val_bpc"}, false);
  log.log(1, {{"loss", 2.5}, {"lr", 0.001}});
  log.log(2, {{"lr", 1e-7}, {"loss", 0.1 + 0.2}});  // given out of order: written in column order
  log.log(2, {{"val_bpc", 3.25}});                  // a second record at the same step
  log.log(3, {});
  // Read while the log is still open: each record must already be on disk.
  CHECK(read_bytes(dir / "run/metrics.jsonl") ==
        "{\"step\":1,\"loss\":2.5,\"lr\":0.001}\n"
        "{\"step\":2,\"loss\":0.30000000000000004,\"lr\":1e-07}\n"
        "{\"step\":2,\"val_bpc\":3.25}\n"
        "{\"step\":3}\n");
  CHECK(read_bytes(dir / "run/metrics.csv") ==
        "step,loss,lr,val_bpc\n"
        "1,2.5,0.001,\n"
        "2,0.30000000000000004,1e-07,\n"
        "2,,,3.25\n"
        "3,,,\n");
  CHECK(log.tensorboard() == nullptr);
  CHECK_FALSE(fs::exists(dir / "run/tensorboard"));
}

TEST_CASE("MetricsLog: numbers read back as the same double; non-finite values are null / nan / inf") {
  ScratchDir dir("metrics_numbers");
  const double third = 1.0 / 3.0, tiny = 5e-324, big = 1.7976931348623157e308;
  MetricsLog log(dir.path.string(), {"a", "b", "c"}, false);
  log.log(0, {{"a", third}, {"b", tiny}, {"c", big}});
  log.log(1, {{"a", kNan}, {"b", kInf}, {"c", -kInf}});
  const std::string csv = read_bytes(dir / "metrics.csv");
  CHECK(csv == "step,a,b,c\n0,0.3333333333333333,5e-324,1.7976931348623157e+308\n1,nan,inf,-inf\n");
  CHECK(std::strtod("0.3333333333333333", nullptr) == third);
  CHECK(read_bytes(dir / "metrics.jsonl") ==
        "{\"step\":0,\"a\":0.3333333333333333,\"b\":5e-324,\"c\":1.7976931348623157e+308}\n"
        "{\"step\":1,\"a\":null,\"b\":null,\"c\":null}\n");
}

TEST_CASE("MetricsLog: a fresh log truncates what a previous run left") {
  ScratchDir dir("metrics_truncate");
  write_bytes(dir / "metrics.csv", "step,old\n1,2\n");
  write_bytes(dir / "metrics.jsonl", "{\"step\":1,\"old\":2}\n");
  MetricsLog log(dir.path.string(), {"loss"}, false);
  CHECK(read_bytes(dir / "metrics.csv") == "step,loss\n");
  CHECK(read_bytes(dir / "metrics.jsonl") == "");
}

TEST_CASE("MetricsLog: resuming drops the records after the checkpoint, keeps the rest, appends") {
  ScratchDir dir("metrics_resume");
  {
    MetricsLog log(dir.path.string(), {"loss", "val"}, false);
    for (int64_t step = 1; step <= 5; ++step) log.log(step, {{"loss", step * 0.5}});
    log.log(5, {{"val", 9.0}});
  }
  // The killed run was cut in the middle of writing step 6.
  write_bytes(dir / "metrics.csv", read_bytes(dir / "metrics.csv") + "6,3");
  write_bytes(dir / "metrics.jsonl", read_bytes(dir / "metrics.jsonl") + "{\"step\":6,\"lo");

  MetricsLog log(dir.path.string(), {"loss", "val"}, false, /*resume_step=*/3);
  CHECK(read_bytes(dir / "metrics.csv") == "step,loss,val\n1,0.5,\n2,1,\n3,1.5,\n");
  CHECK(read_bytes(dir / "metrics.jsonl") ==
        "{\"step\":1,\"loss\":0.5}\n{\"step\":2,\"loss\":1}\n{\"step\":3,\"loss\":1.5}\n");
  log.log(4, {{"loss", 7.0}, {"val", 8.0}});
  CHECK(read_bytes(dir / "metrics.csv") == "step,loss,val\n1,0.5,\n2,1,\n3,1.5,\n4,7,8\n");
  CHECK(read_bytes(dir / "metrics.jsonl") ==
        "{\"step\":1,\"loss\":0.5}\n{\"step\":2,\"loss\":1}\n{\"step\":3,\"loss\":1.5}\n"
        "{\"step\":4,\"loss\":7,\"val\":8}\n");
  CHECK_FALSE(fs::exists(dir / "metrics.csv.tmp"));
  CHECK_FALSE(fs::exists(dir / "metrics.jsonl.tmp"));
  // Steps continue from the kept records: going back before them is refused.
  CHECK_THROWS_WITH_AS(log.log(2, {}), "MetricsLog::log: step 2 comes after step 4: steps must not decrease", Error);
}

TEST_CASE("MetricsLog: resuming with no files yet starts them; resuming at step 0 keeps step 0") {
  ScratchDir dir("metrics_resume_empty");
  {
    MetricsLog log(dir.path.string(), {"loss"}, false, 10);
    CHECK(read_bytes(dir / "metrics.csv") == "step,loss\n");
    CHECK(read_bytes(dir / "metrics.jsonl") == "");
    log.log(0, {{"loss", 1.0}});
    log.log(11, {{"loss", 2.0}});
  }
  MetricsLog log(dir.path.string(), {"loss"}, false, 0);
  CHECK(read_bytes(dir / "metrics.csv") == "step,loss\n0,1\n");
  CHECK(read_bytes(dir / "metrics.jsonl") == "{\"step\":0,\"loss\":1}\n");
}

TEST_CASE("MetricsLog: resuming a CSV of fewer columns (an older nanoattn) moves its cells under the new header") {
  ScratchDir dir("metrics_resume_added");
  const std::string csv = dir / "metrics.csv";
  write_bytes(csv, "step,loss,val\n1,2.5,\n2,,3.5\n3,1.5,\n");
  {
    MetricsLog log(dir.path.string(), {"loss", "loss_bpc", "val", "val_loss"}, false, 2);
    log.log(3, {{"loss", 1.25}, {"loss_bpc", 2}});
  }
  CHECK(read_bytes(csv) == "step,loss,loss_bpc,val,val_loss\n1,2.5,,,\n2,,,3.5,\n3,1.25,2,,\n");
}

TEST_CASE("MetricsLog: resuming with other columns, or over a damaged file, is an error naming the file") {
  ScratchDir dir("metrics_resume_errors");
  const std::string csv = dir / "metrics.csv", jsonl = dir / "metrics.jsonl";
  { MetricsLog log(dir.path.string(), {"loss", "lr"}, false); }
  CHECK_THROWS_WITH_AS(MetricsLog(dir.path.string(), {"loss"}, false, 5),
                       (csv + ": its header \"step,loss,lr\" differs from this run's \"step,loss\" by more than "
                              "added columns (this run does not log lr): a resumed run must log the same columns")
                           .c_str(),
                       Error);
  CHECK(read_bytes(csv) == "step,loss,lr\n");  // left untouched

  write_bytes(csv, "step,loss\n1,2\nx1,3\n");
  CHECK_THROWS_WITH_AS(MetricsLog(dir.path.string(), {"loss"}, false, 5),
                       (csv + ": line 3: cannot read the step from \"x1,3\"").c_str(), Error);
  write_bytes(csv, "step,loss\n1,2\n");
  write_bytes(jsonl, "{\"step\":1,\"loss\":2}\n{\"loss\":2}\n");
  CHECK_THROWS_WITH_AS(MetricsLog(dir.path.string(), {"loss"}, false, 5),
                       (jsonl + ": line 2: no integer \"step\" in {\"loss\":2}").c_str(), Error);
  write_bytes(jsonl, "{\"step\":1,\n");
  CHECK_THROWS_AS(MetricsLog(dir.path.string(), {"loss"}, false, 5), Error);
}

TEST_CASE("MetricsLog: unknown, repeated or badly named metrics are errors listing the columns") {
  ScratchDir dir("metrics_errors");
  MetricsLog log(dir.path.string(), {"loss", "lr"}, false);
  CHECK_THROWS_WITH_AS(log.log(1, {{"los", 1.0}}),
                       "MetricsLog::log: unknown metric \"los\"; the columns are: loss, lr", Error);
  CHECK_THROWS_WITH_AS(log.log(1, {{"lr", 1.0}, {"lr", 2.0}}),
                       "MetricsLog::log: metric \"lr\" is given twice at step 1", Error);
  CHECK_THROWS_WITH_AS(log.log(-1, {}), "MetricsLog::log: step -1 is negative", Error);
  CHECK(read_bytes(dir / "metrics.csv") == "step,loss,lr\n");  // nothing half-written
  for (const char* bad : {"", "step", "a,b", "say \"hi\"", "two\nlines"})
    CHECK_THROWS_AS(MetricsLog(dir / "x", {"loss", bad}, false), Error);
  CHECK_THROWS_WITH_AS(MetricsLog(dir / "x", {"loss", "loss"}, false),
                       "MetricsLog: column \"loss\" is given twice", Error);
}

TEST_CASE("MetricsLog: TensorBoard scalars under <dir>/tensorboard when asked, one per present value") {
  ScratchDir dir("metrics_tb");
  MetricsLog log(dir.path.string(), {"loss", "val_bpc"}, true);
  REQUIRE(log.tensorboard() != nullptr);
  const std::string path = log.tensorboard()->path();
  CHECK(fs::path(path).parent_path() == fs::path(dir / "tensorboard"));
  CHECK(fs::path(path).filename().string().rfind("events.out.tfevents.", 0) == 0);
  CHECK(fs::file_size(path) == 40);  // the version record
  log.log(1, {{"loss", 2.0}});
  // Flushed with the record: one event, framed in 12 + 26 + 4 bytes (wall_time 9, step 2,
  // summary 2 + Summary{2 + Value{tag 2 + 4, simple_value 5}}).
  CHECK(fs::file_size(path) == 40 + 42);
  log.log(2, {{"loss", 1.5}, {"val_bpc", 2.5}});  // two events; "val_bpc" is 3 bytes longer
  const std::string bytes = read_bytes(path);
  CHECK(bytes.size() == 40 + 42 + 42 + 45);
  CHECK(bytes.find("val_bpc") != std::string::npos);
}

TEST_CASE("MetricsLog: TensorBoard after a resume shows each step once; a fresh log removes old event files") {
  ScratchDir dir("metrics_tb_resume");
  const fs::path tb = dir / "tensorboard";
  auto log_steps = [&](MetricsLog& log, int64_t from, int64_t to) {
    for (int64_t s = from; s <= to; ++s) log.log(s, {{"loss", double(s)}});
  };
  {
    MetricsLog log(dir.path.string(), {"loss", "val"}, true, -1, {"train/loss", "val/bpc"});
    log_steps(log, 1, 4);
    log.log(4, {{"val", 3.0}});
    log_steps(log, 5, 8);  // killed after step 8, its checkpoint at step 5
    log.log(8, {{"val", 2.0}});
  }
  {
    MetricsLog log(dir.path.string(), {"loss", "val"}, true, 5, {"train/loss", "val/bpc"});
    log_steps(log, 6, 7);  // the resumed run, then a second kill before step 8
  }
  const auto view = na::testing::events::tensorboard_view(tb);
  std::vector<int64_t> steps;
  for (const auto& [step, value] : view.scalars.at("train/loss")) {
    steps.push_back(step);
    CHECK(value == float(step));
  }
  CHECK(steps == std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7});  // step 8 of the first run is gone
  // val was not logged again: only the START event removes its point at step 8.
  CHECK(view.scalars.at("val/bpc") == std::vector<std::pair<int64_t, float>>{{4, 3.0f}});
  CHECK(view.session_starts == 1);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(tb)) files += e.path().filename().string().rfind("events.", 0) == 0;
  CHECK(files == 2);
  { MetricsLog fresh(dir.path.string(), {"loss", "val"}, true); }
  files = 0;
  for (const auto& e : fs::directory_iterator(tb)) files += e.path().filename().string().rfind("events.", 0) == 0;
  CHECK(files == 1);
  CHECK(na::testing::events::tensorboard_view(tb).scalars.empty());
}
