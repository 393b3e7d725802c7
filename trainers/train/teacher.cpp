#include "train/teacher.h"

#include <algorithm>
#include <filesystem>

#include "dump/prediction_dump.h"
#include "dump/top_k.h"
#include "io/h5.h"
#include "nanoattn/core.h"
#include "train/saved_run.h"

namespace na {
namespace {

constexpr const char* kKey = "train.distill.teacher";

// "65 char tokens vs 66 char tokens, the first differs at id 3 ('a' vs 'b')", or "" if equal.
std::string vocab_difference(const Tokenizer& teacher, const Tokenizer& student) {
  if (teacher.serialize() == student.serialize()) return "";
  std::string out = cat(teacher.size(), " ", teacher.kind_name(), " tokens vs the student's ", student.size(), " ",
                        student.kind_name(), " tokens");
  const size_t n = std::min(teacher.size(), student.size());
  for (size_t i = 0; i < n; ++i)
    if (teacher.vocab()[i] != student.vocab()[i])
      return cat(out, ", the first differs at id ", i, " ('", vocab_text(teacher.vocab()[i]), "' vs '",
                 vocab_text(student.vocab()[i]), "')");
  return out;
}

void check_vocab(const std::string& path, const Tokenizer& teacher, const Tokenizer& student) {
  const std::string diff = vocab_difference(teacher, student);
  NA_CHECK(diff.empty(), path, kKey, ": the teacher's vocabulary differs from the student's (", diff,
           "): distil from a teacher trained on the student's corpus with the same data.tokenizer");
}

// The k likeliest of full rows, or the rows themselves (k = 0).
TeacherRows select(const std::vector<float>& lp, int64_t rows, int64_t V, int64_t k, std::vector<int32_t>& ids,
                   std::vector<float>& values) {
  if (k == 0) return {lp, {}, 0};
  ids.resize(static_cast<size_t>(rows * k));
  values.resize(static_cast<size_t>(rows * k));
  top_k_rows(lp.data(), rows, V, k, ids.data(), values.data());
  return {values, ids, k};
}

class LiveTeacher : public Teacher {
 public:
  LiveTeacher(const std::string& path, const RunConfig& cfg, const Tokenizer& tokenizer)
      : run_(load_saved_run(path)), k_(cfg.train.distill.top_k) {
    check_vocab(path, run_.tokenizer, tokenizer);
    NA_CHECK(cfg.train.seq_len <= run_.model->dims().max_len, path, kKey, ": the teacher's model.max_len is ",
             run_.model->dims().max_len, ", shorter than the student's train.seq_len ", cfg.train.seq_len,
             ": lower train.seq_len to ", run_.model->dims().max_len, " or use a teacher with a longer context");
  }

  // One window per forward: OpenBLAS's sgemm rounds a row differently depending on how many rows
  // the call has, so only a window scored on its own gives the same bits wherever it comes from:
  // as a dump made with `--batch-size 1` scores it (tested: bitwise the same students).
  TeacherRows predict(const Batch& batch) override {
    const int64_t V = static_cast<int64_t>(run_.tokenizer.size()), T = batch.T, N = batch.B * T;
    lp_.resize(static_cast<size_t>(N * V));
    for (int64_t b = 0; b < batch.B; ++b) {
      {
        NoGrad no_grad;  // as evaluate() scores a window: the same ops
        const std::span<const int32_t> window(batch.inputs.data() + b * T, static_cast<size_t>(T));
        Var lp = log_softmax(run_.model->forward(window, 1, T));
        std::copy_n(lp.value().data(), T * V, lp_.begin() + b * T * V);
      }
      tape().reset();  // nothing of the student is on the tape yet
    }
    return select(lp_, N, V, k_, ids_, values_);
  }

  std::string describe() const override { return cat("checkpoint ", run_.path, " (step ", run_.step, ")"); }

 private:
  SavedRun run_;
  int64_t k_;
  std::vector<float> lp_, values_;
  std::vector<int32_t> ids_;
};

class DumpTeacher : public Teacher {
 public:
  DumpTeacher(const std::string& path, const RunConfig& cfg, const Tokenizer& tokenizer,
              const std::vector<int32_t>& train)
      : dump_(PredictionDump::open(path)), k_(cfg.train.distill.top_k) {
    const DumpInfo& d = dump_.info();
    const std::string remake = cat("`nanoattn eval TEACHER_CHECKPOINT.h5 --split train --seq-len ", cfg.train.seq_len,
                                   " --dump ", path, "`");
    NA_CHECK(d.split == "train", path, kKey, ": a dump of the ", d.split, " split; a teacher dump holds the ",
             "predictions for the student's training split: make it with ", remake);
    check_vocab(path, Tokenizer::deserialize(d.tokenizer), tokenizer);
    NA_CHECK(d.seq_len == cfg.train.seq_len, path, kKey, ": the dump's windows have seq_len ", d.seq_len,
             " but the student's train.seq_len is ", cfg.train.seq_len, ": the student must train on the dump's "
             "windows, so set train.seq_len: ", d.seq_len, ", or dump the teacher again with ", remake);
    const int64_t predicted = train.size() > 0 ? static_cast<int64_t>(train.size()) - 1 : 0;
    NA_CHECK(dump_.rows() == predicted, path, kKey, ": the dump predicts ", dump_.rows(),
             " tokens, the student's training split ", predicted, " (", dump_.info().corpus, " vs ", cfg.data.name_or_path,
             "): it was made from another corpus or data.val_fraction / test_fraction; dump the teacher again with ",
             remake);
    if (dump_.top_k() > 0)
      NA_CHECK(k_ >= 1 && k_ <= dump_.top_k(), path, kKey, ": a top-k dump (each token's ", dump_.top_k(),
               " likeliest tokens) but train.distill.top_k is ", k_, k_ == 0 ? " (full distributions)" : "",
               ": set train.distill.top_k to ", dump_.top_k(), " or fewer, or dump full distributions (without --top-k)");
  }

  TeacherRows predict(const Batch& batch) override {
    const int64_t T = batch.T, V = dump_.vocab_size(), N = batch.B * T, kd = dump_.top_k();
    tokens_.resize(static_cast<size_t>(T));
    lp_.resize(static_cast<size_t>(N * (kd ? kd : V)));
    if (kd) dump_ids_.resize(static_cast<size_t>(N * kd));
    for (int64_t b = 0; b < batch.B; ++b) {
      // A dump's row i predicts the token after stream[i]: a window's rows are contiguous.
      const auto start = static_cast<int64_t>(batch.starts[b]);
      dump_.read_tokens(start, T, tokens_.data());
      for (int64_t t = 0; t < T; ++t)
        NA_CHECK(tokens_[t] == batch.inputs[b * T + t], dump_.path(), kKey, ": row ", start + t,
                 " of the dump has input token ", tokens_[t], " but the student's training text has ",
                 batch.inputs[b * T + t], " there: the dump is of another text; dump the teacher again from this corpus");
      if (kd)
        dump_.read_top_k(start, T, dump_ids_.data() + b * T * kd, lp_.data() + b * T * kd);
      else
        dump_.read_logprobs(start, T, lp_.data() + b * T * V);
    }
    if (!kd) return select(lp_, N, V, k_, ids_, values_);
    if (k_ == kd) return {lp_, dump_ids_, kd};
    // The first k of the dump's k_d columns: they are sorted, so these are the k likeliest.
    ids_.resize(static_cast<size_t>(N * k_));
    values_.resize(static_cast<size_t>(N * k_));
    for (int64_t r = 0; r < N; ++r) {
      std::copy_n(dump_ids_.begin() + r * kd, k_, ids_.begin() + r * k_);
      std::copy_n(lp_.begin() + r * kd, k_, values_.begin() + r * k_);
    }
    return {values_, ids_, k_};
  }

  std::string describe() const override {
    return cat("dump ", dump_.path(), " (run ", dump_.info().run_name, ", step ", dump_.info().checkpoint_step,
               dump_.top_k() ? cat(", top ", dump_.top_k()) : std::string(), ")");
  }

 private:
  PredictionDump dump_;
  int64_t k_;
  std::vector<int32_t> tokens_, ids_, dump_ids_;
  std::vector<float> lp_, values_;
};

}  // namespace

std::unique_ptr<Teacher> open_teacher(const RunConfig& cfg, const Tokenizer& tokenizer,
                                      const std::vector<int32_t>& train) {
  const DistillConfig& d = cfg.train.distill;
  NA_CHECK(d.enabled(), cfg.where, "open_teacher: train.distill is not set");
  const std::string& path = d.teacher;
  NA_CHECK(std::filesystem::exists(path), path, kKey, ": no such file: give the path (relative to the experiment ",
           "file's folder) of a teacher checkpoint or of a teacher dump (`nanoattn eval CK --split train --dump ...`)");
  const auto V = static_cast<int64_t>(tokenizer.size());
  NA_CHECK(d.top_k < V, cfg.where, "train.distill.top_k ", d.top_k, " must be less than the vocabulary's ", V,
           " tokens (0 = the teacher's full distribution)");
  std::string format;
  try {
    const h5::File f = h5::File::open(path);  // names the file if it is not HDF5, truncated, ...
    if (f.has_attr("/", "format")) format = f.attr_string("/", "format");
  } catch (const Error& e) {
    throw Error(kKey, e.what());
  }
  if (format == "nanoattn-checkpoint") return std::make_unique<LiveTeacher>(path, cfg, tokenizer);
  if (format == "nanoattn-predictions") return std::make_unique<DumpTeacher>(path, cfg, tokenizer, train);
  throw Error(path, cat(kKey, ": an HDF5 file, but neither a nanoattn checkpoint nor a prediction dump (",
                        format.empty() ? "no 'format' attribute" : "format '" + format + "'",
                        "): give a teacher checkpoint (`nanoattn run` writes <run>/checkpoint.h5) or a teacher dump "
                        "(`nanoattn eval CK --split train --dump teacher.h5`)"));
}

}  // namespace na
