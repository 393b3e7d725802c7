#include "train/trainer.h"

#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <set>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint.h"
#include "data/batcher.h"
#include "data/sha256.h"
#include "dist/comm.h"
#include "metrics/metrics_log.h"
#include "metrics/progress.h"
#include "cost_model.h"
#include "model.h"
#include "nanoattn/core.h"
#include "nanoattn/version.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "plugin_loader.h"
#include "train/evaluate.h"
#include "train/plugin_check.h"
#include "train/predictions.h"
#include "train/saved_run.h"
#include "train/teacher.h"
#include "train/train_step.h"
#include "util/files.h"

namespace na {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The plugins of the model's attention blocks: each block's own `plugin`, else the model's
// `attention:` default, else softmax (as the attention block decides).
void collect_plugins(const YAML::Node& n, const std::string& fallback, std::set<std::string>& out) {
  if (n.IsMap()) {
    for (const auto& kv : n) {
      if (kv.first.Scalar() == "attention" && kv.second.IsMap())
        out.insert(kv.second["plugin"] ? kv.second["plugin"].Scalar() : fallback);
      else
        collect_plugins(kv.second, fallback, out);
    }
  } else if (n.IsSequence()) {
    for (const YAML::Node& c : n) collect_plugins(c, fallback, out);
  }
}

}  // namespace

void check_training_memory(const RunConfig& cfg, const Model& model) {
  const double tokens = static_cast<double>(cfg.train.batch_size) * static_cast<double>(cfg.train.seq_len);
  const double per_token = 3.0 * static_cast<double>(model.dims().vocab) +
                           8.0 * static_cast<double>(model.dims().d_model) *
                               static_cast<double>(std::max<int64_t>(1, model.params().blocks_built("attention")));
  const double bytes = 8.0 * static_cast<double>(model.params().count()) + 4.0 * tokens * per_token;
  check_fits_in_memory(bytes, cfg.where,
                       cat("run '", cfg.name, "': a training step of train.batch_size ", cfg.train.batch_size,
                           " x train.seq_len ", cfg.train.seq_len, " tokens"),
                       "lower train.batch_size or train.seq_len");
}

std::string attention_plugins(const RunConfig& cfg) {
  std::set<std::string> used;
  const YAML::Node defaults = cfg.model["attention"];
  collect_plugins(cfg.model["blocks"], defaults && defaults["plugin"] ? defaults["plugin"].Scalar() : "softmax", used);
  std::string out;
  for (const std::string& p : used) out += (out.empty() ? "" : "+") + p;
  return out;
}

namespace {

void write_summary(const std::string& path, const RunSummary& s) {
  auto num = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); };
  nlohmann::json j = {{"run", s.run},
                      {"unit", s.unit},
                      {"plugins", s.plugins},
                      {"params", s.params},
                      {"steps", s.steps},
                      {"val_" + s.unit, num(s.val_bits)},
                      {"test_" + s.unit, num(s.test_bits)},
                      {"best_val_" + s.unit, num(s.best_val_bits)},
                      {"best_step", s.best_step},
                      {"test_at_best", s.test_at_best},
                      {"val_ppl", num(s.val_ppl)},
                      {"test_ppl", num(s.test_ppl)},
                      {"tokens_per_s", s.tokens_per_s},
                      {"train_seconds", s.train_seconds},
                      {"wall_seconds", s.wall_seconds},
                      {"finished", s.finished},
                      {"plugin_changes", plugin_changes_json(s.plugin_changes)},
                      {"provenance", provenance_json(s.provenance)}};
  write_file_atomic(path, j.dump(2) + "\n");
}

// One line of YAML for a value in an error message (long ones cut).
std::string flow(const YAML::Node& n) {
  if (!n) return "(not set)";
  YAML::Emitter e;
  e << YAML::Flow << n;
  std::string s = e.c_str();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// Two scalars that both read fully as the same double are the same setting, whatever their
// text: config.yaml and checkpoints of older nanoattn hold 17 digits ("0.0040000000000000001"),
// newer ones the shortest form ("0.004").
bool same_number(const YAML::Node& a, const YAML::Node& b) {
  if (!a.IsScalar() || !b.IsScalar()) return false;
  auto read = [](const std::string& s, double& v) {
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
  };
  double x = 0, y = 0;
  return read(a.Scalar(), x) && read(b.Scalar(), y) && x == y;
}

// "key.path: old -> new" for each value that differs, maps and sequences of the same length
// compared element by element.
void diff_config(const YAML::Node& before, const YAML::Node& now, const std::string& path,
                 std::vector<std::string>& out) {
  auto child = [&](const std::string& k) { return path.empty() ? k : path + "." + k; };
  if (before && now && before.IsMap() && now.IsMap()) {
    std::vector<std::string> keys;
    for (const auto& kv : before) keys.push_back(kv.first.Scalar());
    for (const auto& kv : now)
      if (!before[kv.first.Scalar()]) keys.push_back(kv.first.Scalar());
    for (const std::string& k : keys) diff_config(before[k], now[k], child(k), out);
  } else if (before && now && before.IsSequence() && now.IsSequence() && before.size() == now.size()) {
    for (size_t i = 0; i < now.size(); ++i) diff_config(before[i], now[i], child(std::to_string(i)), out);
  } else if (bool(before) != bool(now) ||
             (before && !same_number(before, now) && YAML::Dump(before) != YAML::Dump(now))) {
    out.push_back(cat(path, ": ", flow(before), " -> ", flow(now)));
  }
}

}  // namespace

// A run resumed from a checkpoint must have its settings, or resuming would silently mix two
// experiments. The thread count, the time guard, prediction dumps and compare_to do not change
// the numbers, so a run may resume on another machine, with more time or more outputs.
std::string config_changes(const std::string& saved, const RunConfig& cfg) {
  auto comparable = [](const std::string& text) {
    YAML::Node n = YAML::Load(text);
    n.remove("threads");
    n.remove("compare_to");
    n.remove(kProvenanceKey);
    if (n["train"]) n["train"].remove("time_limit");
    if (n["eval"]) {
      n["eval"].remove("dump");
      n["eval"].remove("dump_dtype");
    }
    return n;
  };
  std::vector<std::string> changes;
  diff_config(comparable(saved), comparable(cfg.resolved_text()), "", changes);
  std::string list;
  for (const std::string& c : changes) list += (list.empty() ? "" : ", ") + c;
  return list;
}

namespace {

class Session {
 public:
  Session(const RunConfig& cfg, const Corpus& corpus, const PluginRegistry& plugins, const TrainOptions& opt)
      : cfg_(cfg), corpus_(corpus), plugins_(plugins), opt_(opt), comm_(na::comm()),
        model_(cfg.model, cfg.where, static_cast<int64_t>(corpus.tokenizer.size()), plugins, cfg.seed),
        params_(model_.params().all()),
        optimizer_(make_optimizer(cfg.train, params_)),
        schedule_(cfg.train.lr, cfg.train.warmup, cfg.train.steps, cfg.train.min_lr_ratio),
        batcher_(corpus.train, cfg.seed, 0, cfg.train.windows == "aligned" ? Windows::Aligned : Windows::Random),
        ck_path_((fs::path(opt.run_dir) / "checkpoint.h5").string()),
        best_path_((fs::path(opt.run_dir) / "best.h5").string()) {
    check_training_memory(cfg, model_);
    if (cfg.train.distill.enabled()) teacher_ = open_teacher(cfg, corpus.tokenizer, corpus.train);
    summary_.run = cfg.name;
    summary_.unit = corpus.tokenizer.kind() == Tokenizer::Kind::Char ? "bpc" : "bpw";
    summary_.params = model_.params().count();
    flops_per_token_ = model_cost(model_, cfg.train.seq_len, cfg.train.seq_len).train_flops_per_token;
    summary_.plugins = attention_plugins(cfg);
    hashes_ = plugin_hashes(plugins);
    summary_.provenance = current_provenance();
  }

  RunSummary run() {
    // Rank 0 has removed what --overwrite removes before any rank looks for a checkpoint.
    if (comm_.size() > 1) comm_.barrier();
    if (!comm_.leader()) return follow();
    const auto session_start = Clock::now();
    fs::create_directories(opt_.run_dir);
    remove_stale_temp_files();
    const bool resumed = opt_.resume && fs::exists(ck_path_);
    if (resumed) restore();
    write_file_atomic((fs::path(opt_.run_dir) / "config.yaml").string(), config_file_text());
    const std::string u = summary_.unit;
    MetricsLog metrics(opt_.run_dir, metric_columns(), cfg_.log.tensorboard, resumed ? step_ : -1, metric_tags());
    if (!resumed) metrics.tensorboard_text("config", 0, markdown_code(config_file_text()));
    Progress progress(opt_.out, opt_.live, cfg_.log.every);
    progress.message(cat("run ", cfg_.name, ": ", summary_.params, " parameters, ", corpus_.train.size(),
                         " training tokens", resumed ? cat(", resuming at step ", step_) : std::string()));
    if (teacher_) progress.message(cat("distilling from the teacher ", teacher_->describe()));
    // Model FLOP utilisation: the model's FLOPs per second over what plain sgemm does here now.
    sgemm_gflops_ = sgemm_gflops(cfg_.train.batch_size * cfg_.train.seq_len);

    const int64_t session_first_step = step_;
    const TrainConfig& t = cfg_.train;
    const int64_t tokens_per_step = t.batch_size * t.seq_len;
    double session_train_s = 0;
    int64_t session_steps = 0;
    Interval iv, last_iv;  // the steps since the last training record, and those it recorded
    bool stopped_early = false, out_of_patience = false;
    auto progress_info = [&] {
      // Between records, the interval so far; right after one, the interval it recorded.
      const Interval& shown = iv.steps > 0 ? iv : last_iv;
      ProgressInfo p{step_, t.steps, shown.mean_loss(), schedule_.lr(std::max<int64_t>(0, step_ - 1)),
                     shown.tokens_per_s(tokens_per_step), seconds_since(session_start), summary_.val_bits,
                     session_first_step};
      p.eval_s = session_eval_s_;
      p.evals_done = session_evals_;
      p.evals_left = evaluations_left();
      return p;
    };
    while (step_ < t.steps) {
      if (opt_.stop_at_step > 0 && step_ >= opt_.stop_at_step) {
        save();
        progress.finish();
        summary_.steps = step_;
        return summary_;
      }
      if (patience_over()) {
        out_of_patience = true;
        break;
      }
      if (stop_agreed()) {
        stopped_early = true;
        break;
      }
      const auto t0 = Clock::now();
      const double lr = schedule_.lr(step_);
      const double loss = train_step(lr);
      const double dt = seconds_since(t0);
      session_train_s += dt;
      train_seconds_ += dt;
      ++step_;
      ++session_steps;
      iv.add(loss, dt, last_grad_norm_, clips(last_grad_norm_, t.grad_clip));
      summary_.tokens_per_s = session_steps * tokens_per_step / session_train_s;
      const bool record = step_ % cfg_.log.every == 0 || step_ == t.steps;
      progress.update(progress_info());  // every step: the live line redraws at most ~10 times a second
      if (record) {
        const double mean_loss = iv.mean_loss();
        std::vector<std::pair<std::string, double>> rec = {{"tokens", double(step_ * tokens_per_step)},
                                                           {"elapsed_s", train_seconds_},
                                                           {"lr", lr},
                                                           {"loss", mean_loss},
                                                           {"grad_norm", last_grad_norm_},
                                                           {"tokens_per_s", iv.tokens_per_s(tokens_per_step)},
                                                           {"loss_" + u, mean_loss / std::log(2.0)},
                                                           {"ms_per_step", 1000.0 * iv.seconds / iv.steps},
                                                           {"grad_norm_mean", iv.grad_norm_sum / iv.steps},
                                                           {"grad_norm_max", iv.grad_norm_max},
                                                           {"clip_frac", double(iv.clipped) / iv.steps}};
        const double model_gflops = flops_per_token_ * iv.tokens_per_s(tokens_per_step) / 1e9;
        rec.insert(rec.end(), {{"model_gflops", model_gflops}, {"mfu", model_gflops / sgemm_gflops_}});
        if (teacher_) rec.emplace_back("ce", std::exchange(interval_ce_, 0.0) / iv.steps);
        metrics.log(step_, rec);
        last_iv = std::exchange(iv, Interval());
      }
      const bool eval_now = cfg_.eval.every > 0 && step_ % cfg_.eval.every == 0 && step_ < t.steps;
      if (eval_now) {
        validate(metrics, progress);
        share_best();
      }
      if ((t.checkpoint_every > 0 && step_ % t.checkpoint_every == 0 && step_ < t.steps) || eval_now) save();
    }
    summary_.steps = step_;
    summary_.finished = step_ >= t.steps || out_of_patience;
    if (const int sig = comm_.size() > 1 ? stop_sig_ : stop_signal()) {
      save();
      progress.finish();
      if (comm_.size() > 1) comm_.barrier();  // the others end the job only after this save
      throw Stopped(sig, cat("stopped by ", signal_name(sig), " at step ", step_));  // train_run says what is kept
    }
    if (stopped_early)
      progress.message(cat("time_limit ", t.time_limit, " s reached at step ", step_, " of ", t.steps));
    if (out_of_patience)
      progress.message(cat("early stop at step ", step_, ": no better val ", u, " in ", t.patience,
                           " evaluations since step ", best_step_));
    const bool dump_val = cfg_.eval.dump || opt_.dump_val, keep_best = cfg_.eval.keep_best;
    if (val_step_ != step_ || (dump_val && !keep_best))
      validate(metrics, progress, dump_val && !keep_best, /*track_best=*/!stopped_early);
    save();
    // The held-out numbers from here on are the best checkpoint's (none yet: a time_limit stop
    // before the first scheduled evaluation keeps the last parameters).
    if (keep_best && best_step_ >= 0 && best_step_ != step_) {
      load_parameters(model_.params(), load_checkpoint(best_path_), best_path_);
      eval_ck_ = {best_path_, best_step_};
      progress.message(cat("evaluating the best checkpoint: step ", best_step_, " (val ", u, " ",
                           fixed(summary_.best_val_bits), "), ", best_path_));
      if (dump_val) evaluate_dumped("val", corpus_.val);
    }
    summary_.best_step = best_step_;
    summary_.test_at_best = keep_best && best_step_ >= 0;
    if (cfg_.eval.test) {
      EvalResult r = cfg_.eval.dump ? evaluate_dumped("test", corpus_.test)
                                    : evaluate(model_, corpus_.test, cfg_.eval_seq_len(), cfg_.eval.batch_size);
      summary_.test_bits = r.bits_per_token();
      summary_.test_ppl = r.perplexity();
      metrics.log(step_, {{"test_" + u, summary_.test_bits},
                          {"test_ppl", summary_.test_ppl},
                          {"test_loss", summary_.test_bits * std::log(2.0)}});
      progress.message(cat("step ", step_, ": test ", u, " ", fixed(summary_.test_bits), " over ", r.tokens,
                           " tokens (", fixed(r.seconds, 1), " s)"));
    }
    progress.done(progress_info());  // the last line again, with the final val and the whole time
    summary_.train_seconds = train_seconds_;
    // Over every session: a run resumed at its last step trained nothing in this one.
    if (train_seconds_ > 0) summary_.tokens_per_s = static_cast<double>(step_ * tokens_per_step) / train_seconds_;
    summary_.wall_seconds = seconds_since(session_start);
    write_summary((fs::path(opt_.run_dir) / "summary.json").string(), summary_);
    return summary_;
  }

 private:
  // Ranks other than 0: the same steps and decisions as rank 0, without files or output.
  RunSummary follow() {
    if (opt_.resume && fs::exists(ck_path_)) restore();
    const TrainConfig& t = cfg_.train;
    while (step_ < t.steps) {
      if ((opt_.stop_at_step > 0 && step_ >= opt_.stop_at_step) || patience_over() || stop_agreed()) break;
      train_step(schedule_.lr(step_));
      ++step_;
      if (cfg_.eval.every > 0 && step_ % cfg_.eval.every == 0 && step_ < t.steps) share_best();
    }
    summary_.steps = step_;
    if (stop_sig_) {
      comm_.barrier();  // rank 0 has saved: ending the job now loses nothing
      throw Stopped(stop_sig_, cat("stopped by ", signal_name(stop_sig_), " at step ", step_));
    }
    return summary_;
  }

  // train.patience: checked before a step rather than after the evaluation, so a run resumed
  // from the checkpoint written at that evaluation stops too.
  bool patience_over() const {
    const TrainConfig& t = cfg_.train;
    return t.patience > 0 && best_step_ >= 0 && step_ % cfg_.eval.every == 0 &&
           (step_ - best_step_) / cfg_.eval.every >= t.patience;
  }

  // Whether to stop before the next step: a signal (on any rank) or time_limit (as rank 0
  // measures it), one decision for all ranks so none waits for the others. stop_sig_: the signal.
  bool stop_agreed() {
    const TrainConfig& t = cfg_.train;
    const bool late = comm_.leader() && t.time_limit > 0 && train_seconds_ >= t.time_limit;
    int64_t v = int64_t{stop_signal()} * 2 + (late ? 1 : 0);
    if (comm_.size() > 1) v = comm_.max(v);
    stop_sig_ = static_cast<int>(v / 2);
    return v != 0;
  }

  // After a scheduled evaluation (rank 0's): the best so far, for patience, on every rank.
  void share_best() {
    if (comm_.size() == 1) return;
    comm_.broadcast(&best_step_, 1);
    double bits[2] = {summary_.best_val_bits, summary_.val_bits};
    comm_.broadcast(bits, 2);
    summary_.best_val_bits = bits[0];
    summary_.val_bits = bits[1];
  }

  // Logging only: what the steps since the last training record did.
  struct Interval {
    int64_t steps = 0, clipped = 0;
    double loss = 0, seconds = 0, grad_norm_sum = 0, grad_norm_max = 0;
    void add(double step_loss, double dt, double grad_norm, bool was_clipped) {
      ++steps;
      loss += step_loss;
      seconds += dt;
      grad_norm_sum += grad_norm;
      grad_norm_max = steps == 1 ? grad_norm : std::max(grad_norm_max, grad_norm);
      clipped += was_clipped;
    }
    double mean_loss() const { return steps ? loss / steps : NAN; }
    double tokens_per_s(int64_t per_step) const { return seconds > 0 ? steps * per_step / seconds : NAN; }
  };

  // metrics.jsonl / .csv columns (the first ten as before; a resumed older run's CSV has its
  // cells moved under this header) and their TensorBoard tags, grouped train/, val/, test/, perf/.
  std::vector<std::pair<std::string, std::string>> metric_names() const {
    const std::string u = summary_.unit;
    std::vector<std::pair<std::string, std::string>> n = {
        {"tokens", "train/tokens"},       {"elapsed_s", "perf/elapsed_s"},
        {"lr", "train/lr"},               {"loss", "train/loss"},
        {"grad_norm", "train/grad_norm"}, {"tokens_per_s", "perf/tokens_per_s"},
        {"val_" + u, "val/" + u},         {"val_ppl", "val/ppl"},
        {"test_" + u, "test/" + u},       {"test_ppl", "test/ppl"}};
    n.insert(n.end(), {{"loss_" + u, "train/loss_" + u},
                       {"ms_per_step", "perf/ms_per_step"},
                       {"grad_norm_mean", "train/grad_norm_mean"},
                       {"grad_norm_max", "train/grad_norm_max"},
                       {"clip_frac", "train/clip_frac"},
                       {"model_gflops", "perf/model_gflops"},
                       {"mfu", "perf/mfu"},
                       {"val_loss", "val/loss"},
                       {"test_loss", "test/loss"}});
    if (teacher_) n.emplace_back("ce", "train/ce");  // distillation: loss is the total, ce its cross-entropy part
    return n;
  }
  std::vector<std::string> metric_columns() const {
    std::vector<std::string> c;
    for (const auto& [column, tag] : metric_names()) c.push_back(column);
    return c;
  }
  std::vector<std::string> metric_tags() const {
    std::vector<std::string> c;
    for (const auto& [column, tag] : metric_names()) c.push_back(tag);
    return c;
  }

  // Text as a Markdown code block (TensorBoard's Text tab renders Markdown).
  static std::string markdown_code(const std::string& text) {
    std::string out = "    ";
    for (char c : text) out += c == '\n' ? std::string("\n    ") : std::string(1, c);
    return out;
  }

  // The evaluations still to come this session, for the ETA: one per eval.every before the
  // last step, the final val and the test split.
  int64_t evaluations_left() const {
    const int64_t every = cfg_.eval.every, total = cfg_.train.steps;
    const int64_t periodic = every > 0 ? (total - 1) / every - step_ / every : 0;
    return std::max<int64_t>(0, periodic) + 1 + (cfg_.eval.test ? 1 : 0);
  }

  // The resolved settings (what checkpoints hold), then this session's provenance.
  std::string config_file_text() const {
    YAML::Node p(YAML::NodeType::Map);
    p[kProvenanceKey] = provenance_yaml(summary_.provenance);
    YAML::Emitter e;
    e << p;
    return cfg_.resolved_text() + e.c_str() + "\n";
  }

  static std::string fixed(double x, int digits = 4) { return cat(std::fixed, std::setprecision(digits), x); }

  // A run killed while saving leaves its temporary files (never the checkpoint or a dump
  // itself) behind. Any ".<name>.tmp-<pid>" here is such a leftover: `nanoattn run` holds the
  // folder's lock, so no other process is writing one.
  void remove_stale_temp_files() const {
    for (const auto& entry : fs::directory_iterator(opt_.run_dir)) {
      std::error_code ec;
      if (is_temp_name(entry.path().filename().string())) fs::remove(entry.path(), ec);
    }
  }

  // The final evaluation of a split, also written to <run>/preds_<split>.h5.
  EvalResult evaluate_dumped(const std::string& split, const std::vector<int32_t>& stream) {
    const auto [ck_path, ck_step] = eval_ck_.first.empty() ? std::pair(ck_path_, step_) : eval_ck_;
    const DumpInfo info = make_dump_info(cfg_, corpus_.tokenizer, ck_path, ck_step, split, EvalMode::Parallel,
                                         cfg_.eval_seq_len(), parse_dump_dtype(cfg_.eval.dump_dtype, cfg_.where));
    return evaluate_with_dump(model_, stream, cfg_.eval_seq_len(), cfg_.eval.batch_size, EvalMode::Parallel,
                              run_dump_path(opt_.run_dir, split), info);
  }

  double train_step(double lr) {
    const Batch batch = batcher_.next(cfg_.train.batch_size, cfg_.train.seq_len);
    const uint64_t dropout_key = Rng::mix(cfg_.seed ^ 0x64726f70ULL, static_cast<uint64_t>(step_));  // "drop"
    // Every rank draws the whole batch (the same data and cursor) and trains on its share.
    Comm* dist = comm_.size() > 1 ? &comm_ : nullptr;
    TeacherRows teacher_rows;
    if (teacher_) teacher_rows = teacher_->predict(rank_rows(batch, dist));
    const StepResult r = na::train_step(model_, params_, *optimizer_, cfg_.train, batch, dropout_key, lr,
                                        teacher_ ? &teacher_rows : nullptr, dist);
    if (teacher_) interval_ce_ += r.ce;
    if (!std::isfinite(r.loss))
      throw Error(cfg_.name, cat("the training loss is ", r.loss, " at step ", step_,
                                 ": lower train.lr or set train.grad_clip; the last checkpoint is ", ck_path_));
    last_grad_norm_ = r.grad_norm;
    return r.loss;
  }

  // track_best false: an evaluation off the schedule (at a time_limit stop) is reported but does
  // not choose the best checkpoint, so the run resumed from there picks what an uninterrupted
  // run picks.
  void validate(MetricsLog& metrics, Progress& progress, bool dump = false, bool track_best = true) {
    const auto eval_start = Clock::now();
    EvalResult r = dump ? evaluate_dumped("val", corpus_.val)
                        : evaluate(model_, corpus_.val, cfg_.eval_seq_len(), cfg_.eval.batch_size);
    summary_.val_bits = r.bits_per_token();
    summary_.val_ppl = r.perplexity();
    val_step_ = step_;
    const std::string u = summary_.unit;
    metrics.log(step_, {{"val_" + u, summary_.val_bits},
                        {"val_ppl", summary_.val_ppl},
                        {"val_loss", summary_.val_bits * std::log(2.0)}});
    session_eval_s_ += seconds_since(eval_start);
    ++session_evals_;
    progress.message(cat("step ", step_, ": val ", u, " ", fixed(summary_.val_bits), " (ppl ",
                         fixed(summary_.val_ppl, 3), ") over ", r.tokens, " tokens (", fixed(r.seconds, 1), " s)"));
    if (track_best && !(summary_.best_val_bits <= summary_.val_bits)) {
      summary_.best_val_bits = summary_.val_bits;
      best_step_ = step_;
      // Written before checkpoint.h5, so a resume from that checkpoint never finds a best.h5
      // older than the best it records (a kill in between replays to the same best).
      if (cfg_.eval.keep_best) save(best_path_);
    }
  }

  void save(const std::string& path) {
    Checkpoint ck;
    ck.nanoattn_version = NANOATTN_VERSION;
    ck.run_name = cfg_.name;
    ck.config_yaml = cfg_.resolved_text();
    ck.step = step_;
    ck.seed = cfg_.seed;
    ck.data_cursor = batcher_.cursor();
    ck.tokenizer = corpus_.tokenizer.serialize();
    ck.plugins = hashes_;
    for (Parameter* p : params_) ck.params.emplace_back(p->name(), p->value());
    ck.optimizer = cfg_.train.optimizer;
    ck.optimizer_steps = optimizer_->step_count();
    ck.optim = optimizer_->state();
    ck.best_val_bpc = summary_.best_val_bits;
    ck.best_step = best_step_;
    ck.elapsed_s = train_seconds_;
    save_checkpoint(path, ck);
  }
  void save() {
    save(ck_path_);
    saved_step_ = step_;
  }

  void restore() {
    Checkpoint ck = load_checkpoint(ck_path_);
    const std::string changes = config_changes(ck.config_yaml, cfg_);
    NA_CHECK(changes.empty(), ck_path_, "was written with other settings (", changes,
             "); resume with the original experiment file, or use a new --out folder");
    NA_CHECK(ck.tokenizer == corpus_.tokenizer.serialize(), ck_path_,
             "the corpus now gives another vocabulary than when the checkpoint was written; restore the "
             "original corpus file or start a new run");
    summary_.plugin_changes = plugin_changes(ck.plugins, plugins_, summary_.plugins);
    check_plugin_changes(summary_.plugin_changes, ck_path_, opt_.allow_plugin_change, opt_.out);
    load_parameters(model_.params(), ck, ck_path_);
    optimizer_->load_state(ck.optim, ck.optimizer_steps);
    batcher_.set_cursor(ck.data_cursor);
    step_ = saved_step_ = ck.step;
    train_seconds_ = ck.elapsed_s;
    summary_.best_val_bits = ck.best_val_bpc;
    best_step_ = ck.best_step;
  }

  const RunConfig& cfg_;
  const Corpus& corpus_;
  const PluginRegistry& plugins_;
  const TrainOptions& opt_;
  Comm& comm_;  // the ranks of an mpirun job; rank 0 alone writes the run's files
  int stop_sig_ = 0;  // the signal all ranks agreed to stop on (stop_agreed)
  Model model_;
  std::vector<Parameter*> params_;
  std::unique_ptr<Optimizer> optimizer_;
  WarmupCosine schedule_;
  Batcher batcher_;
  std::string ck_path_, best_path_;
  std::pair<std::string, int64_t> eval_ck_;  // the checkpoint the final held-out numbers are from, if not the last
  std::vector<std::pair<std::string, std::string>> hashes_;
  RunSummary summary_;
  int64_t step_ = 0, saved_step_ = -1;  // saved_step_: the step of the checkpoint on disk, -1 none
  int64_t best_step_ = -1, val_step_ = -1;  // the step of the best / the last val evaluation
  double train_seconds_ = 0, last_grad_norm_ = 0;
  std::unique_ptr<Teacher> teacher_;  // train.distill
  double flops_per_token_ = 0, sgemm_gflops_ = 0;  // for mfu (models/cost_model.h, core's sgemm_gflops)
  double interval_ce_ = 0;            // with a teacher: the cross-entropy summed since the last record
  double session_eval_s_ = 0;         // this session's val evaluations: their time and count (the ETA)
  int64_t session_evals_ = 0;

 public:
  // What a stop in the middle of an evaluation or a save leaves: the last checkpoint.
  std::string kept() const {
    return saved_step_ < 0 ? "no checkpoint was written yet"
                           : cat("checkpoint ", ck_path_, " (step ", saved_step_, ") is kept: continue with --resume");
  }
};

}  // namespace

RunSummary train_run(const RunConfig& cfg, const Corpus& corpus, const PluginRegistry& plugins,
                     const TrainOptions& opt) {
  // N ranks on one machine share its cores unless `threads` says otherwise.
  const int ranks_here = local_ranks();
  const int threads = cfg.threads > 0 || ranks_here == 1
                          ? static_cast<int>(cfg.threads)
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / ranks_here);
  set_num_threads(threads);
  check_micro_batches(cfg.train, comm().size(), cfg.where);
  Session session(cfg, corpus, plugins, opt);
  try {
    return session.run();
  } catch (const Stopped& s) {
    throw Stopped(s.signal(), cat(s.message(), " (run ", cfg.name, "); ", session.kept()));
  }
}

RunSummary read_summary(const std::string& path) {
  std::ifstream in(path);
  NA_CHECK(in, path, "cannot open the run summary");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, cat("is not valid JSON (", e.what(), "); delete it to re-run the final evaluation"));
  }
  auto num = [&](const std::string& k) { return j.contains(k) && j[k].is_number() ? j[k].get<double>() : NAN; };
  RunSummary s;
  s.run = j.value("run", "");
  s.unit = j.value("unit", "bpc");
  s.plugins = j.value("plugins", "");
  s.params = j.value("params", int64_t{0});
  s.steps = j.value("steps", int64_t{0});
  s.val_bits = num("val_" + s.unit);
  s.test_bits = num("test_" + s.unit);
  s.best_val_bits = num("best_val_" + s.unit);
  s.best_step = j.value("best_step", int64_t{-1});
  s.test_at_best = j.value("test_at_best", false);
  s.val_ppl = num("val_ppl");
  s.test_ppl = num("test_ppl");
  s.tokens_per_s = num("tokens_per_s");
  s.train_seconds = num("train_seconds");
  s.wall_seconds = num("wall_seconds");
  s.finished = j.value("finished", false);
  return s;
}

}  // namespace na
