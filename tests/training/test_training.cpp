// The training loop end to end on a tiny generated corpus: the loss falls, resume is exact,
// threads do not change a bit, and the RNN form evaluates to the same bits per character.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "checkpoint/checkpoint.h"
#include "data/corpus.h"
#include "experiment/experiment.h"
#include "nanoattn/error.h"
#include "nanoattn/rng.h"
#include "plugin_loader.h"
#include "train/evaluate.h"
#include "train/saved_run.h"
#include "train/train_step.h"
#include "model.h"
#include "train/trainer.h"
#include "trainers/event_reader.h"

namespace fs = std::filesystem;
using namespace na;

namespace {

// Text with structure a tiny model learns in a few dozen steps: words from a small set.
std::string tiny_text(size_t chars) {
  const char* words[] = {"the ", "cat ", "sat ", "on ", "a ", "mat. ", "and ", "dog ", "ran\n"};
  std::string s;
  for (uint64_t i = 0; s.size() < chars; ++i) s += words[philox(99, i)[0] % 9];
  return s;
}

struct Workspace {
  fs::path dir = fs::temp_directory_path() / ("na_train_" + std::to_string(::getpid()));
  Workspace() {
    fs::create_directories(dir);
    std::ofstream(dir / "tiny.txt") << tiny_text(20000);
  }
  ~Workspace() { fs::remove_all(dir); }

  RunConfig config(const std::string& plugin, int64_t steps, int64_t threads = 0, double dropout = 0.1) const {
    const std::string yaml = cat(R"(
experiment: t
run: r
seed: 5
threads: )", threads, R"(
data: {corpus: tiny.txt, val_fraction: 0.1, test_fraction: 0.1}
model:
  d_model: 16
  max_len: 16
  blocks:
    - token_embedding: {}
    - positional: {kind: learned}
    - residual: {body: [{attention: {plugin: )", plugin, R"(, n_heads: 2}}]}
    - residual: {norm_name: ln2, body: [{feed_forward: {mult: 2}}, {dropout: {p: )", dropout, R"(}}]}
    - layernorm: {name: ln_f}
    - lm_head: {tied_to: tok}
train: {steps: )", steps, R"(, batch_size: 4, seq_len: 16, lr: 0.03, warmup: 2, label_smoothing: 0.05}
eval: {every: 4, batch_size: 8, seq_len: 16}
log: {every: 2}
)");
    return parse_run(YAML::Load(yaml), "test", dir.string());
  }
};

RunSummary train(const Workspace& w, const RunConfig& cfg, const std::string& name, bool resume = false,
                 int64_t stop_at = 0) {
  static PluginRegistry plugins;
  Corpus corpus = load_corpus(cfg.data);
  TrainOptions opt;
  opt.run_dir = (w.dir / name).string();
  opt.resume = resume;
  opt.stop_at_step = stop_at;
  std::FILE* sink = std::tmpfile();
  opt.out = sink;
  RunSummary s = train_run(cfg, corpus, plugins, opt);
  std::fclose(sink);
  return s;
}

void check_same_checkpoint(const std::string& a_path, const std::string& b_path) {
  Checkpoint a = load_checkpoint(a_path), b = load_checkpoint(b_path);
  CHECK(a.step == b.step);
  CHECK(a.data_cursor == b.data_cursor);
  CHECK(a.optimizer_steps == b.optimizer_steps);
  REQUIRE(a.params.size() == b.params.size());
  for (size_t i = 0; i < a.params.size(); ++i) {
    CAPTURE(a.params[i].first);
    const Tensor &x = a.params[i].second, &y = b.params[i].second;
    REQUIRE(x.numel() == y.numel());
    CHECK(std::memcmp(x.data(), y.data(), x.numel() * sizeof(float)) == 0);
  }
  REQUIRE(a.optim.size() == b.optim.size());
  for (size_t i = 0; i < a.optim.size(); ++i) {
    CAPTURE(a.optim[i].first);
    CHECK(std::memcmp(a.optim[i].second.data(), b.optim[i].second.data(), a.optim[i].second.numel() * 4) == 0);
  }
}

std::vector<std::string> lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// The training records' loss column of a run folder's metrics.csv, in step order.
std::vector<double> train_losses(const fs::path& run_dir) {
  const std::vector<std::string> csv = lines(run_dir / "metrics.csv");
  REQUIRE(!csv.empty());
  REQUIRE(csv[0].rfind("step,tokens,elapsed_s,lr,loss,", 0) == 0);
  std::vector<double> loss;
  for (size_t i = 1; i < csv.size(); ++i) {
    size_t pos = 0;
    for (int c = 0; c < 4; ++c) pos = csv[i].find(',', pos) + 1;
    const std::string cell = csv[i].substr(pos, csv[i].find(',', pos) - pos);
    if (!cell.empty()) loss.push_back(std::stod(cell));
  }
  return loss;
}

}  // namespace

TEST_CASE("a run trains, evaluates and writes its folder") {
  Workspace w;
  RunSummary s = train(w, w.config("linear", 40), "run");
  CHECK(s.finished);
  CHECK(s.steps == 40);
  CHECK(s.unit == "bpc");
  CHECK(s.plugins == "linear");
  CHECK(s.params > 0);
  // A uniform guess over this corpus's ~20 symbols is > 4 bits; the word structure is learnable.
  CHECK(s.val_bits < 3.2);
  CHECK(std::isfinite(s.test_bits));
  CHECK(s.best_val_bits <= s.val_bits);
  for (const char* f : {"config.yaml", "metrics.jsonl", "metrics.csv", "checkpoint.h5", "summary.json"})
    CHECK(fs::exists(w.dir / "run" / f));
  // 20 training records (every 2 steps), 10 val records (every 4 steps and the end), 1 test.
  CHECK(lines(w.dir / "run" / "metrics.jsonl").size() == 20 + 10 + 1);
  RunSummary back = read_summary((w.dir / "run" / "summary.json").string());
  CHECK(back.val_bits == doctest::Approx(s.val_bits).epsilon(1e-12));
  CHECK(back.finished);
}

TEST_CASE("the loss falls for softmax and linear attention") {
  Workspace w;
  for (const char* plugin : {"softmax", "linear"}) {
    CAPTURE(plugin);
    train(w, w.config(plugin, 30), plugin);
    const std::vector<double> loss = train_losses(w.dir / plugin);
    REQUIRE(loss.size() == 15);
    CHECK(loss.back() < loss.front() - 0.5);
  }
}

// Every causal plugin the registry finds (bundled folder and NANOATTN_PLUGIN_PATH, so a new
// plugin is covered without editing this file), with its default options, in the tiny model.
TEST_CASE("every causal plugin on the search path trains: the loss falls in 20 steps") {
  Workspace w;
  const PluginRegistry registry;
  std::vector<std::string> trained;
  for (const LoadedPlugin& p : registry.plugins()) {
    if (!p.info->capabilities.causal) continue;
    CAPTURE(p.name);
    RunConfig cfg = w.config(p.name, 20);
    cfg.eval.every = 0;      // one validation at the end
    cfg.eval.test = false;
    const std::string dir = "causal_" + p.name;
    RunSummary s = train(w, cfg, dir);
    const std::vector<double> loss = train_losses(w.dir / dir);
    REQUIRE(loss.size() == 10);  // a record every 2 steps
    std::printf("trained causal plugin %-12s 20 steps: loss %.3f -> %.3f, val %.3f bpc\n", p.name.c_str(),
                loss.front(), loss.back(), s.val_bits);
    CHECK(std::isfinite(s.val_bits));
    CHECK(loss.back() < loss.front() - 0.25);  // softmax and linear fall by ~0.4 here
    trained.push_back(p.name);
  }
  std::string names;
  for (const std::string& n : trained) names += (names.empty() ? "" : ", ") + n;
  MESSAGE("trained " << trained.size() << " causal plugins: " << names);
  // The bundled causal plugins at least.
  for (const char* must : {"softmax", "linear"})
    CHECK(std::find(trained.begin(), trained.end(), must) != trained.end());
}

TEST_CASE("resume is exact: N steps straight == N/2, stop, resume to N") {
  Workspace w;
  const RunConfig cfg = w.config("linear", 12);
  train(w, cfg, "straight");
  RunSummary half = train(w, cfg, "resumed", false, 6);
  CHECK(half.steps == 6);
  CHECK(load_checkpoint((w.dir / "resumed" / "checkpoint.h5").string()).step == 6);
  RunSummary full = train(w, cfg, "resumed", true);
  CHECK(full.steps == 12);
  check_same_checkpoint((w.dir / "straight" / "checkpoint.h5").string(),
                        (w.dir / "resumed" / "checkpoint.h5").string());
  // The metrics were not duplicated by the resume: the same records, in order.
  CHECK(lines(w.dir / "straight" / "metrics.jsonl").size() == lines(w.dir / "resumed" / "metrics.jsonl").size());
}

TEST_CASE("resuming with other settings is refused") {
  Workspace w;
  train(w, w.config("linear", 4), "run");
  RunConfig other = w.config("linear", 8);
  CHECK_THROWS_WITH_AS(train(w, other, "run", true),
                       doctest::Contains("was written with other settings (train.steps: 4 -> 8)"), Error);
  // Another thread count or time guard changes no number: resuming is allowed.
  RunConfig same = w.config("linear", 4, 1);
  same.train.time_limit = 86400;  // a changed guard; a day, so no machine is slow enough to hit it
  CHECK(train(w, same, "run", true).steps == 4);
}

TEST_CASE("config_changes compares numbers by value: 17-digit (older) and shortest text are the same setting") {
  Workspace w;
  RunConfig cfg = w.config("linear", 4);
  cfg.train.lr = 0.004;
  cfg.train.eps = 1.0 / 3;
  std::string old_style = cfg.resolved_text();
  auto replace = [&](const std::string& from, const std::string& to) {
    const size_t at = old_style.find(from);
    REQUIRE(at != std::string::npos);
    old_style.replace(at, from.size(), to);
  };
  replace("lr: 0.004\n", "lr: 0.0040000000000000001\n");           // what yaml-cpp wrote
  replace("eps: 0.3333333333333333\n", "eps: 0.33333333333333331\n");
  CHECK(config_changes(old_style, cfg) == "");
  CHECK(config_changes(old_style + "provenance: {host: elsewhere, started_utc: 2001-01-01T00:00:00Z}\n", cfg) == "");
  replace("lr: 0.0040000000000000001\n", "lr: 0.0040000000000000009\n");  // another double
  CHECK(config_changes(old_style, cfg) == "train.lr: 0.0040000000000000009 -> 0.004");
}

TEST_CASE("TensorBoard after a kill and --resume: each step once, as many points as metrics.jsonl") {
  Workspace w;
  RunConfig cfg = w.config("linear", 12);
  cfg.log.tensorboard = true;
  const fs::path dir = w.dir / "tb";
  train(w, cfg, "tb", false, 8);  // the checkpoint at step 8
  fs::copy_file(dir / "checkpoint.h5", w.dir / "ck8.h5");
  train(w, cfg, "tb", true);  // on to step 12: records, evaluations and events after step 8
  // A kill after those were written, before the next checkpoint: the folder as it would be.
  fs::copy_file(w.dir / "ck8.h5", dir / "checkpoint.h5", fs::copy_options::overwrite_existing);
  fs::remove(dir / "summary.json");
  train(w, cfg, "tb", true);

  const auto view = na::testing::events::tensorboard_view(dir / "tensorboard");
  CHECK(view.session_starts == 2);
  CHECK(view.texts.count("config") == 1);
  CHECK(view.texts.at("config").find("    run: r\n") != std::string::npos);
  size_t points = 0;
  for (const auto& [tag, series] : view.scalars) {
    CAPTURE(tag);
    CHECK((tag.rfind("train/", 0) == 0 || tag.rfind("val/", 0) == 0 || tag.rfind("test/", 0) == 0 ||
           tag.rfind("perf/", 0) == 0));
    std::set<int64_t> steps;
    for (const auto& [step, value] : series) CHECK(steps.insert(step).second);  // each step once
    points += series.size();
  }
  size_t values = 0;
  for (const std::string& line : lines(dir / "metrics.jsonl")) values += nlohmann::json::parse(line).size() - 1;
  CHECK(points == values);
  CHECK(view.scalars.at("train/loss").size() == 6);  // steps 2, 4, ..., 12
  CHECK(view.scalars.at("val/bpc").size() == 3);     // steps 4, 8, 12

  // --overwrite (a fresh start) leaves only the new run's events.
  train(w, cfg, "tb", false);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir / "tensorboard")) files += e.is_regular_file();
  CHECK(files == 1);
}

TEST_CASE("metrics of each interval: loss in nats and bits, tokens/s and ms/step, grad norms, clipped fraction") {
  Workspace w;
  RunConfig cfg = w.config("linear", 6);
  cfg.log.every = 1;  // every step a record
  cfg.train.grad_clip = 1e-3;  // clips every step
  train(w, cfg, "every1");
  std::vector<nlohmann::json> train_records, val_records;
  for (const std::string& line : lines(w.dir / "every1" / "metrics.jsonl")) {
    nlohmann::json j = nlohmann::json::parse(line);
    (j.contains("loss") ? train_records : val_records).push_back(j);
  }
  REQUIRE(train_records.size() == 6);
  const int64_t tokens_per_step = cfg.train.batch_size * cfg.train.seq_len;
  for (const nlohmann::json& r : train_records) {
    CAPTURE(r.dump());
    CHECK(r["loss_bpc"].get<double>() == doctest::Approx(r["loss"].get<double>() / std::log(2.0)));
    // One step per interval: the interval's rate is that step's, not an average since the start.
    CHECK(r["tokens_per_s"].get<double>() * r["ms_per_step"].get<double>() / 1000 ==
          doctest::Approx(tokens_per_step));
    CHECK(r["grad_norm_mean"].get<double>() == r["grad_norm"].get<double>());
    CHECK(r["grad_norm_max"].get<double>() == r["grad_norm"].get<double>());
    CHECK(r["clip_frac"].get<double>() == 1.0);
    // mfu = model FLOPs per second over the session's sgemm probe: the same interval's rate.
    CHECK(r["model_gflops"].get<double>() > 0);
    CHECK(r["mfu"].get<double>() > 0);
    CHECK(r["model_gflops"].get<double>() / r["tokens_per_s"].get<double>() ==
          doctest::Approx(train_records[0]["model_gflops"].get<double>() / train_records[0]["tokens_per_s"].get<double>()));
    CHECK(r["mfu"].get<double>() / r["model_gflops"].get<double>() ==
          doctest::Approx(train_records[0]["mfu"].get<double>() / train_records[0]["model_gflops"].get<double>()));
  }
  REQUIRE(!val_records.empty());
  for (const nlohmann::json& r : val_records)
    if (r.contains("val_bpc")) CHECK(r["val_loss"].get<double>() == doctest::Approx(r["val_bpc"].get<double>() * std::log(2.0)));

  // Over 3 steps: mean <= max, and nothing clipped with clipping off.
  cfg.log.every = 3;
  cfg.train.grad_clip = 0;
  train(w, cfg, "every3");
  for (const std::string& line : lines(w.dir / "every3" / "metrics.jsonl")) {
    nlohmann::json r = nlohmann::json::parse(line);
    if (!r.contains("loss")) continue;
    CHECK(r["grad_norm_mean"].get<double>() <= r["grad_norm_max"].get<double>());
    CHECK(r["grad_norm_max"].get<double>() >= r["grad_norm"].get<double>());
    CHECK(r["clip_frac"].get<double>() == 0.0);
  }
}

TEST_CASE("the same seed gives bitwise the same run on 1 and 2 threads") {
  Workspace w;
  train(w, w.config("softmax", 6, 1), "one");
  train(w, w.config("softmax", 6, 2), "two");
  check_same_checkpoint((w.dir / "one" / "checkpoint.h5").string(), (w.dir / "two" / "checkpoint.h5").string());
}

TEST_CASE("a trained linear model gives the same bits per character as an RNN") {
  Workspace w;
  train(w, w.config("linear", 20), "run");
  SavedRun run = load_saved_run((w.dir / "run" / "checkpoint.h5").string());
  Corpus corpus = load_corpus(run.cfg.data);
  const EvalResult par = evaluate(*run.model, corpus.val, 16, 8, EvalMode::Parallel);
  const EvalResult rec = evaluate(*run.model, corpus.val, 16, 8, EvalMode::Recurrent);
  CHECK(par.tokens == static_cast<int64_t>(corpus.val.size()) - 1);  // every token but the first
  CHECK(rec.tokens == par.tokens);
  CHECK(std::abs(par.bits_per_token() - rec.bits_per_token()) < 1e-5 * par.bits_per_token());
  // Per token too, not only on average.
  std::vector<float> nll_par, nll_rec;
  evaluate(*run.model, corpus.val, 16, 3, EvalMode::Parallel,
           [&](const EvalRows& r) { nll_par.insert(nll_par.end(), r.nll.begin(), r.nll.end()); });
  evaluate(*run.model, corpus.val, 16, 3, EvalMode::Recurrent,
           [&](const EvalRows& r) { nll_rec.insert(nll_rec.end(), r.nll.begin(), r.nll.end()); });
  REQUIRE(nll_par.size() == nll_rec.size());
  float worst = 0, largest = 0;
  for (size_t i = 0; i < nll_par.size(); ++i) {
    worst = std::max(worst, std::abs(nll_par[i] - nll_rec[i]));
    largest = std::max(largest, nll_par[i]);
  }
  CAPTURE(worst);
  CAPTURE(largest);
  CHECK(worst < 2e-5f * largest);
  // A softmax model has no RNN form: the error says which block and what to do.
  train(w, w.config("softmax", 2), "soft");
  SavedRun soft = load_saved_run((w.dir / "soft" / "checkpoint.h5").string());
  CHECK_THROWS_WITH_AS(evaluate(*soft.model, corpus.val, 16, 8, EvalMode::Recurrent),
                       doctest::Contains("softmax"), Error);
}

TEST_CASE("train.micro_batches: K micro-batches give the whole batch's loss and gradient, up to rounding") {
  Workspace w;
  static PluginRegistry plugins;
  const RunConfig cfg = w.config("linear", 2, 0, /*dropout=*/0.0);  // masks differ with K > 1
  const Corpus corpus = load_corpus(cfg.data);
  Batcher batcher(corpus.train, 5);
  const Batch batch = batcher.next(cfg.train.batch_size, cfg.train.seq_len);
  std::vector<StepResult> r;
  for (int64_t K : {1, 2, 4}) {
    TrainConfig t = cfg.train;
    t.micro_batches = K;
    Model model(cfg.model, cfg.where, static_cast<int64_t>(corpus.tokenizer.size()), plugins, cfg.seed);
    std::vector<Parameter*> params = model.params().all();
    auto optimizer = make_optimizer(t, params);
    r.push_back(train_step(model, params, *optimizer, t, batch, 7, t.lr));
  }
  for (size_t i = 1; i < r.size(); ++i) {
    CAPTURE(i);
    CHECK(r[i].loss == doctest::Approx(r[0].loss).epsilon(1e-6));
    CHECK(r[i].grad_norm == doctest::Approx(r[0].grad_norm).epsilon(1e-5));
  }
}

TEST_CASE("train.micro_batches must divide train.batch_size, and be a multiple of the MPI ranks") {
  Workspace w;
  RunConfig cfg = w.config("linear", 2);
  YAML::Node n = YAML::Load(cfg.resolved_text());
  n["train"]["micro_batches"] = 3;
  CHECK_THROWS_WITH_AS(parse_run(n, "test", w.dir.string()),
                       doctest::Contains("train.micro_batches 3 does not divide train.batch_size 4"), Error);
  cfg.train.micro_batches = 2;
  CHECK_NOTHROW(check_micro_batches(cfg.train, 2, "test"));
  CHECK_THROWS_WITH_AS(check_micro_batches(cfg.train, 4, "test"),
                       doctest::Contains("set train.micro_batches to a multiple of 4"), Error);
}
