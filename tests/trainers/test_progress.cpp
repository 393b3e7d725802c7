#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "metrics/progress.h"
#include "nanoattn/error.h"

using namespace na;

namespace {

// Everything written to a tmpfile so far.
std::string contents(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  for (int c; (c = std::fgetc(f)) != EOF;) s += static_cast<char>(c);
  std::fseek(f, 0, SEEK_END);
  return s;
}

struct TmpFile {
  std::FILE* f = std::tmpfile();
  TmpFile() { REQUIRE(f != nullptr); }
  ~TmpFile() { std::fclose(f); }
};

// Step s of a 25-step run: elapsed 0.5 s per step, loss falling by 0.05 per step.
ProgressInfo info(int64_t s) {
  ProgressInfo p{s, 25, 3.0 - 0.05 * s, 1e-3, 14200.0, 0.5 * s};
  if (s == 20) p.val_bpc = 2.95, p.tokens_per_s = 2.5e6;
  if (s == 25) p.tokens_per_s = 950.0;
  return p;
}

// A live line as drawn. (Appending rather than `"\r" + line` avoids a GCC 12 -Wrestrict false
// positive.)
std::string drawn(const std::string& line) {
  std::string s = "\r";
  s += line;
  s += "\x1b[K";
  return s;
}

// Sets TERM for one scope.
struct ScopedTerm {
  std::string old;
  bool had;
  explicit ScopedTerm(const char* value) {
    const char* o = std::getenv("TERM");
    had = o != nullptr;
    if (had) old = o;
    setenv("TERM", value, 1);
  }
  ~ScopedTerm() { had ? setenv("TERM", old.c_str(), 1) : unsetenv("TERM"); }
};

}  // namespace

TEST_CASE("format_duration: seconds, minutes + seconds, hours + minutes") {
  CHECK(format_duration(0) == "0s");
  CHECK(format_duration(45) == "45s");
  CHECK(format_duration(59.4) == "59s");
  CHECK(format_duration(59.6) == "1m00s");  // rounded first, then split
  CHECK(format_duration(192) == "3m12s");
  CHECK(format_duration(3599.4) == "59m59s");
  CHECK(format_duration(3600) == "1h00m");
  CHECK(format_duration(3779) == "1h02m");
  CHECK(format_duration(90000) == "25h00m");
  CHECK(format_duration(-1) == "?");
  CHECK(format_duration(NAN) == "?");
  CHECK(format_duration(INFINITY) == "?");
}

TEST_CASE("format_progress: every field, the step padded to the total's width, ETA of this session") {
  ProgressInfo p{120, 2000, 2.1345, 9.6e-4, 14200.0, 192.0 * 120 / 1880};
  p.val_bpc = 2.95;
  CHECK(format_progress(p) ==
        "step  120/2000 | loss 2.1345 | bpc 3.079 | val 2.950 | lr 9.6e-04 | 14.2k tok/s | ETA 3m12s");
  p.val_bpc = NAN;
  p.tokens_per_s = NAN;
  p.start_step = 100;  // resumed at 100: 10 s for 20 steps, 1880 left
  p.elapsed_s = 10.0;
  CHECK(format_progress(p) == "step  120/2000 | loss 2.1345 | bpc 3.079 | lr 9.6e-04 | ETA 15m40s");
  p.step = 100;  // no step done yet in this session
  CHECK(format_progress(p) == "step  100/2000 | loss 2.1345 | bpc 3.079 | lr 9.6e-04 | ETA ?");
}

TEST_CASE("format_progress: the ETA adds the evaluations to come, at the mean time of those done") {
  // 100 of 1000 steps in 60 s, of which 2 evaluations took 10 s: 50 s / 100 steps of training.
  ProgressInfo p{100, 1000, 2.0, 1e-3, NAN, 60.0};
  p.eval_s = 10.0;
  p.evals_done = 2;
  p.evals_left = 10;
  CHECK(format_progress(p) == "step  100/1000 | loss 2.0000 | bpc 2.885 | lr 1.0e-03 | ETA 8m20s");  // 450 + 50
  p.evals_left = 0;
  CHECK(format_progress(p) == "step  100/1000 | loss 2.0000 | bpc 2.885 | lr 1.0e-03 | ETA 7m30s");
  p.evals_done = 0;  // no evaluation measured yet: none estimated
  p.eval_s = 0;
  p.evals_left = 10;
  CHECK(format_progress(p) == "step  100/1000 | loss 2.0000 | bpc 2.885 | lr 1.0e-03 | ETA 9m00s");
}

TEST_CASE("Progress::done: the line once more with the final val, live or not") {
  ProgressInfo last = info(25);
  last.val_bpc = 2.5;
  for (bool live : {false, true}) {
    CAPTURE(live);
    TmpFile out;
    {
      Progress progress(out.f, live, 10);
      progress.update(info(25));
      progress.message("step 25: val bpc 2.5000");
      progress.done(last);
    }
    const std::string text = contents(out.f);
    const std::string final_line = format_progress(last);
    CHECK(final_line.find("| val 2.500 |") != std::string::npos);
    CHECK(text.size() >= final_line.size() + 1);
    CHECK(text.substr(text.size() - final_line.size() - (live ? 4 : 1)) ==
          (live ? final_line + "\x1b[K\n" : final_line + "\n"));
  }
}

TEST_CASE("Progress, not live: a plain line every `every` steps and on the last; messages in between") {
  TmpFile out;
  {
    Progress progress(out.f, false, 10);
    for (int64_t s = 1; s <= 25; ++s) {
      progress.update(info(s));
      if (s == 12) progress.message("eval: val bpc 2.950");
    }
    progress.finish();
  }
  CHECK(contents(out.f) ==
        "step 10/25 | loss 2.5000 | bpc 3.607 | lr 1.0e-03 | 14.2k tok/s | ETA 8s\n"
        "eval: val bpc 2.950\n"
        "step 20/25 | loss 2.0000 | bpc 2.885 | val 2.950 | lr 1.0e-03 | 2.50M tok/s | ETA 3s\n"
        "step 25/25 | loss 1.7500 | bpc 2.525 | lr 1.0e-03 | 950 tok/s | done in 13s\n");
}

TEST_CASE("Progress, live: one line rewritten in place; messages above it; a newline at the end") {
  TmpFile out;
  Progress progress(out.f, true, 10);
  progress.update(info(1));  // the first update is always drawn
  CHECK(contents(out.f) == drawn(format_progress(info(1))));
  progress.update(info(2));  // may be throttled; message() redraws the latest either way
  const std::string before = contents(out.f);
  const std::string after_message = before + "\r\x1b[K" + "eval: val bpc 2.950\n" + drawn(format_progress(info(2)));
  progress.message("eval: val bpc 2.950");
  CHECK(contents(out.f) == after_message);
  progress.update(info(25));  // the last step is always drawn
  progress.finish();
  const std::string all = contents(out.f);
  CHECK(all == after_message + drawn(format_progress(info(25))) + "\n");
  progress.message("done");  // after finish: a plain line, nothing redrawn
  progress.finish();         // and no second newline
  CHECK(contents(out.f) == all + "done\n");
}

TEST_CASE("Progress, live: at most about ten redraws a second") {
  TmpFile out;
  Progress progress(out.f, true, 1);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t s = 1; s < 20000; ++s) progress.update({s, 1000000, 1.0, 1e-3, 1.0, 1.0});
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  size_t draws = 0;
  for (char c : contents(out.f)) draws += c == '\r';
  CHECK(draws >= 1);
  CHECK(draws <= 2 + static_cast<size_t>(ms / 100));
}

TEST_CASE("Progress: is_terminal for a file, and for a pseudo-terminal with TERM set or 'dumb'") {
  TmpFile file;
  CHECK_FALSE(Progress::is_terminal(file.f));
  CHECK_THROWS_AS(Progress(file.f, false, 0), Error);

  const int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
    if (master >= 0) close(master);
    MESSAGE("skipped the pseudo-terminal part: no pty available");
    return;
  }
  std::FILE* tty = std::fopen(ptsname(master), "w");
  REQUIRE(tty != nullptr);
  {
    ScopedTerm term("xterm");
    CHECK(Progress::is_terminal(tty));
  }
  {
    ScopedTerm term("dumb");
    CHECK_FALSE(Progress::is_terminal(tty));
  }
  // Live lines are cut to the terminal's width so that "\r" can rewrite them.
  winsize ws{};
  ws.ws_col = 40, ws.ws_row = 24;
  REQUIRE(ioctl(fileno(tty), TIOCSWINSZ, &ws) == 0);
  {
    Progress progress(tty, true, 1);
    progress.update(info(1));
    progress.finish();
  }
  std::string got;
  char buf[512];
  pollfd pfd{master, POLLIN, 0};
  while (poll(&pfd, 1, 200) > 0) {
    const ssize_t n = read(master, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
    if (got.find('\n') != std::string::npos) break;
  }
  CHECK(got == drawn(format_progress(info(1)).substr(0, 39)) + "\r\n");  // the tty adds "\r" to "\n"
  std::fclose(tty);
  close(master);
}
