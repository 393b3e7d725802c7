// Training progress on the terminal: one line rewritten in place on a terminal, plain lines
// every few steps in a log file, a pipe or CI.
#pragma once
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

namespace na {

struct ProgressInfo {
  int64_t step, total_steps;  // step = optimizer updates done, 1..total_steps
  double loss, lr, tokens_per_s, elapsed_s;  // elapsed_s: seconds since this session started
  double val_bpc = NAN;                      // shown when not NaN
  int64_t start_step = 0;  // the step this session started from (a resumed run's checkpoint)
  double eval_s = 0;        // of elapsed_s, the seconds this session spent in evaluations
  int64_t evals_done = 0;   // the evaluations eval_s covers
  int64_t evals_left = 0;   // the evaluations still to come (each estimated at eval_s / evals_done)
};

// "step  120/2000 | loss 2.1345 | bpc 3.079 | val 2.950 | lr 9.6e-04 | 14.2k tok/s | ETA 3m12s"
// bpc = loss / ln 2. The step is padded to the width of total_steps. ETA = the training seconds
// (elapsed_s - eval_s) per step done this session (step - start_step) times the steps left, plus
// the mean evaluation so far times evals_left; the last step shows "done in <elapsed>" instead.
// tok/s is left out when not finite.
std::string format_progress(const ProgressInfo& p);

class Progress {
 public:
  // live = a terminal: one line rewritten in place ("\r...\x1b[K"), at most ~10 times a second
  // (the first update and the last step always drawn), cut to the terminal's width; otherwise a
  // plain line every `every` steps and on the last step. A clock is read only to throttle the
  // live line, so non-live output depends only on the updates (tok/s and ETA aside).
  Progress(std::FILE* out, bool live, int64_t every);
  ~Progress();  // finish()
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  static bool is_terminal(std::FILE* out);  // isatty(fileno(out)) and TERM != "dumb"
  // Called after every step: a plain line only every `every` steps and on the last.
  void update(const ProgressInfo& p);
  // The end (after the final evaluations): the line once more, with the final val, whatever the
  // step; then finish().
  void done(const ProgressInfo& p);
  // A line of its own (e.g. an evaluation result). Live: clears the progress line, prints the
  // message, then redraws the latest progress below it.
  void message(const std::string& line);
  void finish();  // live: ends the progress line with a newline

 private:
  void draw();

  std::FILE* out_;
  bool live_;
  int64_t every_;
  std::string latest_;   // the latest update's text, drawn or not
  bool shown_ = false;   // live: a progress line is on screen, not yet ended by a newline
  std::chrono::steady_clock::time_point last_draw_{};
};

// "45s", "3m12s", "1h02m" (rounded to the second, then hours and minutes shown as whole
// units); "?" for a negative or non-finite duration.
std::string format_duration(double seconds);

}  // namespace na
