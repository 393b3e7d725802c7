// Knowledge distillation end to end on tiny generated text: a student distilled from a teacher
// dump is bitwise the student distilled from the live teacher (full and top-k), alpha = 1 is
// bitwise plain training, resume is exact, and each misconfiguration gets its own message.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "checkpoint/checkpoint.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "experiment/experiment.h"
#include "nanoattn/error.h"
#include "nanoattn/rng.h"
#include "plugin_loader.h"
#include "train/predictions.h"
#include "train/saved_run.h"
#include "train/teacher.h"
#include "train/trainer.h"
#include "train/train_step.h"
#include "model.h"
#include "error_of.h"

namespace fs = std::filesystem;
using namespace na;

namespace {

std::string words_text(size_t chars, uint64_t key) {
  const char* words[] = {"the ", "cat ", "sat ", "on ", "a ", "mat. ", "and ", "dog ", "ran\n"};
  std::string s;
  for (uint64_t i = 0; s.size() < chars; ++i) s += words[philox(key, i)[0] % 9];
  return s;
}

struct Workspace {
  fs::path dir = fs::temp_directory_path() / ("na_distill_" + std::to_string(::getpid()));
  Workspace() {
    fs::create_directories(dir);
    std::ofstream(dir / "tiny.txt") << words_text(12000, 99);
    std::ofstream(dir / "other.txt") << words_text(12000, 99) << "XYZ";  // three more characters
  }
  ~Workspace() { fs::remove_all(dir); }

  // `train_extra`: more keys of the train map, e.g. "windows: aligned, distill: {...}".
  RunConfig config(int64_t seed, int64_t steps, const std::string& train_extra, const std::string& corpus = "tiny.txt",
                   int64_t d_model = 16) const {
    const std::string yaml = cat(R"(
experiment: t
run: r
seed: )", seed, R"(
data: {corpus: )", corpus, R"(, val_fraction: 0.1, test_fraction: 0.1}
model:
  d_model: )", d_model, R"(
  max_len: 16
  blocks:
    - token_embedding: {}
    - positional: {kind: learned}
    - residual: {body: [{attention: {plugin: softmax, n_heads: 2}}]}
    - residual: {norm_name: ln2, body: [{feed_forward: {mult: 2}}, {dropout: {p: 0.1}}]}
    - layernorm: {name: ln_f}
    - lm_head: {tied_to: tok}
train: {steps: )", steps, R"(, batch_size: 4, seq_len: 16, lr: 0.03, warmup: 2)",
                                 train_extra.empty() ? "" : ", " + train_extra, R"(}
eval: {every: 0, batch_size: 8, test: false}
log: {every: 2}
)");
    return parse_run(YAML::Load(yaml), "test.yaml", dir.string());
  }

  std::string path(const std::string& name) const { return (dir / name).string(); }
};

RunSummary train(const Workspace& w, const RunConfig& cfg, const std::string& name, bool resume = false,
                 int64_t stop_at = 0) {
  static PluginRegistry plugins;
  Corpus corpus = load_corpus(cfg.data);
  TrainOptions opt;
  opt.run_dir = w.path(name);
  opt.resume = resume;
  opt.stop_at_step = stop_at;
  std::FILE* sink = std::tmpfile();
  opt.out = sink;
  RunSummary s = train_run(cfg, corpus, plugins, opt);
  std::fclose(sink);
  return s;
}

// What `nanoattn eval CK --split train --dump PATH [--top-k K] --seq-len T` writes.
void dump_teacher(const std::string& ck, const std::string& path, int64_t T, int64_t top_k = 0, int64_t batch_size = 1) {
  SavedRun run = load_saved_run(ck);
  Corpus corpus = load_corpus(run.cfg.data);
  DumpInfo info = make_dump_info(run.cfg, run.tokenizer, ck, run.step, "train", EvalMode::Parallel, T, DumpDtype::Float32);
  info.top_k = top_k;
  evaluate_with_dump(*run.model, corpus.train, T, batch_size, EvalMode::Parallel, path, info);
}

// 0 if every parameter has the same bits, else the largest |difference|.
float max_param_diff(const std::string& a_path, const std::string& b_path) {
  Checkpoint a = load_checkpoint(a_path), b = load_checkpoint(b_path);
  REQUIRE(a.step == b.step);
  REQUIRE(a.params.size() == b.params.size());
  float worst = 0;
  for (size_t i = 0; i < a.params.size(); ++i) {
    const Tensor &x = a.params[i].second, &y = b.params[i].second;
    REQUIRE(x.numel() == y.numel());
    if (std::memcmp(x.data(), y.data(), x.numel() * sizeof(float)) == 0) continue;
    for (int64_t j = 0; j < x.numel(); ++j) worst = std::max(worst, std::abs(x[j] - y[j]) + 1e-30f);
  }
  return worst;
}

bool same_optimizer_state(const std::string& a_path, const std::string& b_path) {
  Checkpoint a = load_checkpoint(a_path), b = load_checkpoint(b_path);
  if (a.optim.size() != b.optim.size() || a.data_cursor != b.data_cursor) return false;
  for (size_t i = 0; i < a.optim.size(); ++i)
    if (std::memcmp(a.optim[i].second.data(), b.optim[i].second.data(), a.optim[i].second.numel() * 4) != 0) return false;
  return true;
}

std::string distill(const std::string& teacher, double alpha = 0.5, int64_t top_k = 0) {
  return cat("windows: aligned, distill: {teacher: ", teacher, ", alpha: ", alpha, ", temperature: 2.0, top_k: ", top_k, "}");
}

// One teacher (trained once) and its dumps, shared by the cases below.
struct Fixture {
  Workspace w;
  std::string ck, dump, dump_top;
  Fixture() {
    train(w, w.config(7, 20, ""), "teacher");
    ck = w.path("teacher/checkpoint.h5");
    dump = w.path("teacher_train.h5");
    dump_top = w.path("teacher_train_top5.h5");
    dump_teacher(ck, dump, 16);
    dump_teacher(ck, dump_top, 16, 5);
  }
};
Fixture& fixture() {
  static Fixture f;
  return f;
}

}  // namespace

// The live teacher scores each window on its own, as a dump made with `--batch-size 1` does
// (OpenBLAS 0.3.21's sgemm rounds a row differently depending on how many rows the call has: its
// Cooperlake / SkylakeX kernels for 16 output columns and K >= 32, its Haswell kernels from 32
// columns on), so a student distilled from that dump is bitwise the one distilled live. A dump
// made 8 windows at a time differs in the last bits: to 1e-5 in log-probability.
TEST_CASE("distilled from a dump = distilled from the live teacher, bit for bit (full and top-k)") {
  Fixture& f = fixture();
  const Workspace& w = f.w;
  {
    const RunConfig live_cfg = w.config(3, 12, distill(f.ck)), dump_cfg = w.config(3, 12, distill(f.dump));
    const Corpus corpus = load_corpus(live_cfg.data);
    std::unique_ptr<Teacher> live = open_teacher(live_cfg, corpus.tokenizer, corpus.train);
    std::unique_ptr<Teacher> dumped = open_teacher(dump_cfg, corpus.tokenizer, corpus.train);
    Batcher batcher(corpus.train, 3, 0, Windows::Aligned);
    for (int i = 0; i < 8; ++i) {
      const Batch batch = batcher.next(4, 16);
      const TeacherRows a = live->predict(batch);
      const std::vector<float> live_lp(a.logprobs.begin(), a.logprobs.end());
      const TeacherRows b = dumped->predict(batch);
      REQUIRE(b.logprobs.size() == live_lp.size());
      CHECK(std::memcmp(live_lp.data(), b.logprobs.data(), live_lp.size() * sizeof(float)) == 0);
    }
    // 8 windows per forward: not the same bits, but close.
    dump_teacher(f.ck, w.path("teacher_b8.h5"), 16, 0, 8);
    std::unique_ptr<Teacher> batched = open_teacher(w.config(3, 12, distill(w.path("teacher_b8.h5"))),
                                                    corpus.tokenizer, corpus.train);
    const Batch batch = Batcher(corpus.train, 3, 0, Windows::Aligned).next(4, 16);
    const TeacherRows a = live->predict(batch);
    const std::vector<float> live_lp(a.logprobs.begin(), a.logprobs.end());
    const TeacherRows b = batched->predict(batch);
    float worst = 0;
    for (size_t j = 0; j < live_lp.size(); ++j) worst = std::max(worst, std::abs(live_lp[j] - b.logprobs[j]));
    MESSAGE("teacher log-probabilities, live vs a dump made 8 windows at a time: largest difference ", worst);
    CHECK(worst <= 1e-5f);
  }
  train(w, w.config(3, 12, distill(f.ck)), "live");
  train(w, w.config(3, 12, distill(f.dump)), "dumped");
  const float full_diff = max_param_diff(w.path("live/checkpoint.h5"), w.path("dumped/checkpoint.h5"));
  CHECK(full_diff == 0.0f);
  CHECK(same_optimizer_state(w.path("live/checkpoint.h5"), w.path("dumped/checkpoint.h5")));

  // top_k 5 from the live teacher, from the top-5 dump, and from the full dump (selected on read).
  train(w, w.config(3, 12, distill(f.ck, 0.5, 5)), "live_top");
  train(w, w.config(3, 12, distill(f.dump_top, 0.5, 5)), "dumped_top");
  train(w, w.config(3, 12, distill(f.dump, 0.5, 5)), "dumped_full_top");
  const float top_diff = max_param_diff(w.path("live_top/checkpoint.h5"), w.path("dumped_top/checkpoint.h5"));
  CHECK(top_diff == 0.0f);
  CHECK(max_param_diff(w.path("dumped_top/checkpoint.h5"), w.path("dumped_full_top/checkpoint.h5")) == 0.0f);
  CHECK(same_optimizer_state(w.path("dumped_top/checkpoint.h5"), w.path("dumped_full_top/checkpoint.h5")));

  // The teacher matters far more than that: without it (alpha = 1), or top-5 instead of full.
  train(w, w.config(3, 12, distill(f.dump, 1.0)), "alpha1");
  const float teacher_effect = max_param_diff(w.path("dumped/checkpoint.h5"), w.path("alpha1/checkpoint.h5"));
  const float top_effect = max_param_diff(w.path("dumped/checkpoint.h5"), w.path("dumped_top/checkpoint.h5"));
  MESSAGE("largest parameter difference after 12 steps: live vs dump ", full_diff, " (top-5: ", top_diff,
          "); dump vs alpha = 1: ", teacher_effect, "; full vs top-5 teacher: ", top_effect);
  CHECK(teacher_effect > 0.01f);

  // metrics: loss (the total) and ce (its cross-entropy part) differ while distilling.
  std::ifstream csv(w.path("live/metrics.csv"));
  std::string header, row;
  std::getline(csv, header);
  std::getline(csv, row);
  CHECK(header == "step,tokens,elapsed_s,lr,loss,grad_norm,tokens_per_s,val_bpc,val_ppl,test_bpc,test_ppl,loss_bpc,"
                  "ms_per_step,grad_norm_mean,grad_norm_max,clip_frac,model_gflops,mfu,val_loss,test_loss,ce");
  const double loss = std::stod(row.substr(row.find(',', row.find(',', row.find(',', row.find(',') + 1) + 1) + 1) + 1));
  const double ce = std::stod(row.substr(row.rfind(',') + 1));
  CHECK(std::abs(loss - ce) > 1e-3);
}

TEST_CASE("alpha = 1 is bitwise the run without distillation (same aligned windows)") {
  Fixture& f = fixture();
  const Workspace& w = f.w;
  train(w, w.config(4, 10, "windows: aligned"), "plain");
  train(w, w.config(4, 10, distill(f.ck, 1.0)), "alpha1_live");
  CHECK(max_param_diff(w.path("plain/checkpoint.h5"), w.path("alpha1_live/checkpoint.h5")) == 0.0f);
  CHECK(same_optimizer_state(w.path("plain/checkpoint.h5"), w.path("alpha1_live/checkpoint.h5")));
}

TEST_CASE("resuming a distilled run in the middle is bitwise the uninterrupted run") {
  Fixture& f = fixture();
  const Workspace& w = f.w;
  for (const std::string& teacher : {f.dump, f.ck}) {
    CAPTURE(teacher);
    const std::string tag = teacher == f.ck ? "live" : "dump";
    const RunConfig cfg = w.config(5, 12, distill(teacher, 0.25, 5));
    train(w, cfg, "straight_" + tag);
    train(w, cfg, "resumed_" + tag, false, 5);
    CHECK(load_checkpoint(w.path("resumed_" + tag + "/checkpoint.h5")).step == 5);
    train(w, cfg, "resumed_" + tag, true);
    CHECK(max_param_diff(w.path("straight_" + tag + "/checkpoint.h5"), w.path("resumed_" + tag + "/checkpoint.h5")) == 0.0f);
    CHECK(same_optimizer_state(w.path("straight_" + tag + "/checkpoint.h5"), w.path("resumed_" + tag + "/checkpoint.h5")));
  }
  // Another alpha, temperature or teacher is a change of settings: resume refuses it.
  const RunConfig other = w.config(5, 12, cat("windows: aligned, distill: {teacher: ", f.dump, ", alpha: 0.5, top_k: 5}"));
  CHECK(config_changes(load_checkpoint(w.path("resumed_dump/checkpoint.h5")).config_yaml, other) ==
        "train.distill.alpha: 0.25 -> 0.5");
  const RunConfig plain = w.config(5, 12, "windows: aligned");
  CHECK(config_changes(load_checkpoint(w.path("resumed_dump/checkpoint.h5")).config_yaml, plain).find("train.distill: ") !=
        std::string::npos);
}

TEST_CASE("distillation errors name the file, the key, both values and the fix") {
  Fixture& f = fixture();
  const Workspace& w = f.w;
  // A missing file.
  std::string e = error_of([&] { train(w, w.config(1, 2, distill("no_such.h5")), "e1"); });
  CHECK(e.find(w.path("no_such.h5") + ": train.distill.teacher: no such file") != std::string::npos);
  // A file that is neither a checkpoint nor a dump.
  std::ofstream(w.path("text.h5")) << "not hdf5";
  e = error_of([&] { train(w, w.config(1, 2, distill("text.h5")), "e2"); });
  CHECK(e.find("train.distill.teacher: ") != std::string::npos);
  CHECK(e.find("not an HDF5 file") != std::string::npos);
  // A teacher with another vocabulary (trained on a text with three more characters).
  train(w, w.config(1, 2, "", "other.txt"), "other_teacher");
  e = error_of([&] { train(w, w.config(1, 2, distill("other_teacher/checkpoint.h5")), "e3"); });
  CHECK(e.find("train.distill.teacher: the teacher's vocabulary differs from the student's (") != std::string::npos);
  CHECK(e.find(" char tokens vs the student's ") != std::string::npos);
  // A dump of another seq_len.
  dump_teacher(f.ck, w.path("teacher_T8.h5"), 8);
  e = error_of([&] { train(w, w.config(1, 2, distill("teacher_T8.h5")), "e4"); });
  CHECK(e.find("the dump's windows have seq_len 8 but the student's train.seq_len is 16: ") != std::string::npos);
  CHECK(e.find("set train.seq_len: 8, or dump the teacher again with `nanoattn eval TEACHER_CHECKPOINT.h5 --split train "
               "--seq-len 16 --dump") != std::string::npos);
  // A dump of the validation split.
  {
    SavedRun run = load_saved_run(f.ck);
    Corpus corpus = load_corpus(run.cfg.data);
    evaluate_with_dump(*run.model, corpus.val, 16, 8, EvalMode::Parallel, w.path("teacher_val.h5"),
                       make_dump_info(run.cfg, run.tokenizer, f.ck, run.step, "val", EvalMode::Parallel, 16,
                                      DumpDtype::Float32));
  }
  e = error_of([&] { train(w, w.config(1, 2, distill("teacher_val.h5")), "e5"); });
  CHECK(e.find("a dump of the val split; a teacher dump holds the predictions for the student's training split") !=
        std::string::npos);
  // A top-k dump asked for more (or all) of the distribution.
  e = error_of([&] { train(w, w.config(1, 2, distill(f.dump_top, 0.5, 0)), "e6"); });
  CHECK(e.find("a top-k dump (each token's 5 likeliest tokens) but train.distill.top_k is 0 (full distributions): set "
               "train.distill.top_k to 5 or fewer") != std::string::npos);
  // top_k must be below the vocabulary.
  e = error_of([&] { train(w, w.config(1, 2, distill(f.ck, 0.5, 500)), "e7"); });
  CHECK(e.find("train.distill.top_k 500 must be less than the vocabulary's") != std::string::npos);
  // The settings themselves (checked when the experiment is read).
  e = error_of([&] { w.config(1, 2, cat("distill: {teacher: ", f.ck, "}")); });
  CHECK(e.find("train.distill needs train.windows: aligned") != std::string::npos);
  CHECK(e.find("but train.windows is random: add `windows: aligned` under train (--set train.windows=aligned)") !=
        std::string::npos);
  e = error_of([&] { w.config(1, 2, cat("windows: aligned, distill: {teacher: t.h5, alpha: 1.5}")); });
  CHECK(e.find("alpha") != std::string::npos);
  e = error_of([&] { w.config(1, 2, cat("windows: aligned, distill: {teacher: t.h5, temperature: 0}")); });
  CHECK(e.find("train.distill.temperature must be > 0, got 0") != std::string::npos);
  e = error_of([&] { w.config(1, 2, cat("windows: aligned, distill: {teacher: t.h5, top_k: -1}")); });
  CHECK(e.find("top_k") != std::string::npos);
  e = error_of([&] { w.config(1, 2, cat("windows: aligned, distill: {teacher: t.h5, temprature: 2}")); });
  CHECK(e.find("temprature") != std::string::npos);
  e = error_of([&] { w.config(1, 2, cat("windows: aligned, distill: {alpha: 0.5}")); });
  CHECK(e.find("'teacher' is required") != std::string::npos);
  e = error_of([&] { w.config(1, 2, cat("windows: sideways")); });
  CHECK(e.find("windows") != std::string::npos);
}

TEST_CASE("train.micro_batches with a teacher: each micro-batch gets its own rows (the loss of K = 1, to rounding)") {
  Fixture& f = fixture();
  const Workspace& w = f.w;
  static PluginRegistry plugins;
  for (const std::string& teacher : {f.ck, f.dump}) {
    CAPTURE(teacher);
    RunConfig cfg = w.config(6, 2, distill(teacher, 0.5, 5));
    cfg.model["blocks"][3]["residual"]["body"][1]["dropout"]["p"] = 0.0;  // the masks differ with K > 1
    const Corpus corpus = load_corpus(cfg.data);
    std::unique_ptr<Teacher> t = open_teacher(cfg, corpus.tokenizer, corpus.train);
    Batcher batcher(corpus.train, 6, 0, Windows::Aligned);
    const Batch batch = batcher.next(cfg.train.batch_size, cfg.train.seq_len);
    const TeacherRows rows = t->predict(batch);
    std::vector<StepResult> r;
    for (int64_t K : {1, 2, 4}) {
      TrainConfig tc = cfg.train;
      tc.micro_batches = K;
      Model model(cfg.model, cfg.where, static_cast<int64_t>(corpus.tokenizer.size()), plugins, cfg.seed);
      std::vector<Parameter*> params = model.params().all();
      auto optimizer = make_optimizer(tc, params);
      r.push_back(train_step(model, params, *optimizer, tc, batch, 1, tc.lr, &rows));
    }
    for (size_t i = 1; i < r.size(); ++i) {
      CAPTURE(i);
      CHECK(r[i].loss == doctest::Approx(r[0].loss).epsilon(1e-6));
      CHECK(r[i].ce == doctest::Approx(r[0].ce).epsilon(1e-6));
      CHECK(r[i].grad_norm == doctest::Approx(r[0].grad_norm).epsilon(1e-5));
    }
  }
}
