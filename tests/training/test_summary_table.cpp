// The experiment's comparison table: the KL column appears with compare_to.
#include <doctest/doctest.h>

#include "train/summary_table.h"

using namespace na;

namespace {
RunSummary run(const std::string& name, const std::string& ref = "", double kl = NAN) {
  RunSummary s;
  s.run = name;
  s.unit = "bpc";
  s.plugins = name;
  s.val_bits = 2.5;
  s.compare_to = ref;
  s.kl_vs_ref = kl;
  return s;
}
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("summary table: a KL column only when a run has compare_to") {
  const std::string plain = summary_markdown("x", {run("softmax"), run("linear")});
  CHECK(!has(plain, "KL"));
  const std::string one = summary_markdown("x", {run("softmax"), run("linear", "softmax", 0.123456)});
  CHECK(has(one, "| KL vs softmax (bits/char) |"));
  CHECK(has(one, "0.1235 |"));
  const std::string two = summary_markdown("x", {run("softmax"), run("linear", "softmax", 0.1), run("l2", "linear", 0.2)});
  CHECK(has(two, "| KL vs ref (bits/char) |"));
  CHECK(has(two, "0.2000 vs linear |"));
  const std::string csv = summary_csv({run("softmax"), run("linear", "softmax", 0.25)});
  CHECK(has(csv, "train_seconds,compare_to,kl_vs_ref,best_val,best_step\n"));
  CHECK(has(csv, ",softmax,0.250000,,-1\n"));
  CHECK(has(csv, ",,,,-1\n"));  // the reference itself: empty cells
}

TEST_CASE("summary table: with eval.keep_best it shows the best checkpoint's val and step") {
  RunSummary r = run("linear");
  r.steps = 800;
  r.best_val_bits = 2.25;
  r.best_step = 600;
  r.test_at_best = true;
  const std::string t = summary_markdown("x", {r});
  CHECK(has(t, "2.2500 (best: step 600)"));
  CHECK(!has(t, "2.5000"));
  r.best_step = 800;  // the best is the last: nothing to say
  CHECK(has(summary_markdown("x", {r}), " 2.5000 |"));
  r.best_step = 600;
  r.test_at_best = false;  // without keep_best the numbers are the last step's
  CHECK(has(summary_markdown("x", {r}), " 2.5000 |"));
  CHECK(has(summary_csv({r}), ",2.250000,600\n"));
}
