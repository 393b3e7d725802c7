// Progress lines. Output errors are ignored on purpose: progress is a view, never a reason to
// stop training (the metrics files carry the record and do check their writes).
#include "metrics/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "nanoattn/error.h"

namespace na {

namespace {

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string format_rate(double tokens_per_s) {
  if (tokens_per_s >= 1e6) return fmt("%.2fM", tokens_per_s / 1e6);
  if (tokens_per_s >= 1e3) return fmt("%.1fk", tokens_per_s / 1e3);
  return fmt("%.0f", tokens_per_s);
}

// The terminal's width, or 0 if `out` is not one (then nothing is cut).
size_t terminal_width(std::FILE* out) {
  winsize ws{};
  if (ioctl(fileno(out), TIOCGWINSZ, &ws) != 0) return 0;
  return ws.ws_col;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e15) return "?";
  const long long s = std::llround(seconds);
  char buf[48];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%llds", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s % 3600 / 60);
  return buf;
}

std::string format_progress(const ProgressInfo& p) {
  const int width = static_cast<int>(std::to_string(p.total_steps).size());
  char step[64];
  std::snprintf(step, sizeof step, "step %*lld/%lld", width, static_cast<long long>(p.step),
                static_cast<long long>(p.total_steps));
  std::string line = step;
  line += " | loss " + fmt("%.4f", p.loss) + " | bpc " + fmt("%.3f", p.loss / std::log(2.0));
  if (!std::isnan(p.val_bpc)) line += " | val " + fmt("%.3f", p.val_bpc);
  line += " | lr " + fmt("%.1e", p.lr);
  if (std::isfinite(p.tokens_per_s)) line += " | " + format_rate(p.tokens_per_s) + " tok/s";
  if (p.step >= p.total_steps) {
    line += " | done in " + format_duration(p.elapsed_s);
  } else {
    const int64_t done = p.step - p.start_step;
    const double per_eval = p.evals_done > 0 ? p.eval_s / static_cast<double>(p.evals_done) : 0;
    line += " | ETA " + (done > 0 ? format_duration((p.elapsed_s - p.eval_s) / static_cast<double>(done) *
                                                        static_cast<double>(p.total_steps - p.step) +
                                                    per_eval * static_cast<double>(p.evals_left))
                                  : std::string("?"));
  }
  return line;
}

Progress::Progress(std::FILE* out, bool live, int64_t every) : out_(out), live_(live), every_(every) {
  NA_CHECK(out != nullptr, "Progress", "no output stream");
  NA_CHECK(every > 0, "Progress", "every = ", every, " must be positive");
}

Progress::~Progress() { finish(); }

bool Progress::is_terminal(std::FILE* out) {
  const char* term = std::getenv("TERM");
  return isatty(fileno(out)) == 1 && !(term && std::strcmp(term, "dumb") == 0);
}

void Progress::update(const ProgressInfo& p) {
  latest_ = format_progress(p);
  const bool last = p.step >= p.total_steps;
  if (!live_) {
    if (p.step % every_ == 0 || last) std::fprintf(out_, "%s\n", latest_.c_str()), std::fflush(out_);
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (shown_ && !last && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw();
}

void Progress::done(const ProgressInfo& p) {
  latest_ = format_progress(p);
  if (live_)
    draw();
  else
    std::fprintf(out_, "%s\n", latest_.c_str()), std::fflush(out_);
  finish();
}

void Progress::message(const std::string& line) {
  if (live_ && shown_) std::fputs("\r\x1b[K", out_);
  std::fprintf(out_, "%s\n", line.c_str());
  shown_ = false;
  if (live_ && !latest_.empty()) draw();
  std::fflush(out_);
}

void Progress::finish() {
  if (live_ && shown_) std::fputc('\n', out_), std::fflush(out_);
  shown_ = false;
  latest_.clear();  // a later message() must not redraw a finished line
}

void Progress::draw() {
  std::string line = latest_;
  if (const size_t cols = terminal_width(out_); cols > 1 && line.size() >= cols) line.resize(cols - 1);
  std::fprintf(out_, "\r%s\x1b[K", line.c_str());
  std::fflush(out_);
  shown_ = true;
}

}  // namespace na
