// `nanoattn eval checkpoint.h5` (bits per token over a whole split) and `nanoattn sample
// checkpoint.h5` (generated text), each in parallel or recurrent (RNN) form.
#include <cstdio>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "nanoattn/parallel.h"
#include "train/evaluate.h"
#include "train/predictions.h"
#include "train/sample.h"
#include "train/saved_run.h"
#include "util/files.h"
#include "util/folder_lock.h"

namespace na::cli {
namespace {

const std::map<std::string, EvalMode> kModes = {{"parallel", EvalMode::Parallel}, {"recurrent", EvalMode::Recurrent}};

struct EvalArgs {
  std::string checkpoint, split = "val", mode = "parallel", dump, dump_dtype = "float32";
  int64_t seq_len = 0, batch_size = 0, top_k = 0;
  int threads = 0;
  bool json = false, allow_plugin_change = false;
};

void run_eval(const EvalArgs& a) {
  set_num_threads(a.threads);
  // The dump must not replace the checkpoint (or the corpus, checked once it is known), and no
  // other nanoattn may write into its folder meanwhile.
  const std::vector<std::string> outputs = {a.dump, a.dump.empty() ? "" : FolderLock::file_next_to(a.dump)};
  const std::string fix = "give --dump another path";
  refuse_overwriting_inputs(outputs, {a.checkpoint}, fix);
  std::optional<FolderLock> lock;
  if (!a.dump.empty()) lock.emplace(FolderLock::for_file(a.dump, "the dump"));
  SavedRun run = load_saved_run(a.checkpoint, a.allow_plugin_change);
  Corpus corpus = load_corpus(run.cfg.data);
  refuse_overwriting_inputs(outputs, {corpus.path}, fix);
  NA_CHECK(corpus.tokenizer.serialize() == run.tokenizer.serialize(), a.checkpoint, "the corpus ",
           run.cfg.data.name_or_path, " now gives another vocabulary than the one this model was trained on");
  const std::vector<int32_t>& stream = a.split == "train" ? corpus.train : a.split == "test" ? corpus.test : corpus.val;
  const int64_t T = a.seq_len > 0 ? a.seq_len : run.cfg.eval_seq_len();
  const int64_t B = a.batch_size > 0 ? a.batch_size : run.cfg.eval.batch_size;
  NA_CHECK(T <= run.model->dims().max_len, "--seq-len", T, " exceeds the model's max_len ", run.model->dims().max_len);
  NA_CHECK(a.top_k == 0 || !a.dump.empty(), "--top-k", "only applies to a dump: add --dump FILE");
  NA_CHECK(a.top_k < static_cast<int64_t>(run.tokenizer.size()), "--top-k", a.top_k, " must be less than the ",
           "vocabulary's ", run.tokenizer.size(), " tokens (0, the default, keeps full distributions)");
  DumpInfo info;
  if (!a.dump.empty()) {
    info = make_dump_info(run.cfg, run.tokenizer, a.checkpoint, run.step, a.split, kModes.at(a.mode), T,
                          parse_dump_dtype(a.dump_dtype, "--dump-dtype"));
    info.top_k = a.top_k;
  }
  double dump_s = 0;
  const EvalResult r = a.dump.empty() ? evaluate(*run.model, stream, T, B, kModes.at(a.mode))
                                      : evaluate_with_dump(*run.model, stream, T, B, kModes.at(a.mode), a.dump, info,
                                                           &dump_s);
  const std::string unit = corpus.tokenizer.kind() == Tokenizer::Kind::Char ? "bpc" : "bpw";
  if (a.json) {
    nlohmann::json j = {{"checkpoint", a.checkpoint}, {"run", run.cfg.name},  {"step", run.step},
                        {"split", a.split},           {"mode", a.mode},       {"seq_len", T},
                        {"tokens", r.tokens},         {unit, r.bits_per_token()}, {"ppl", r.perplexity()},
                        {"nll_nats", r.nll},          {"seconds", r.seconds},
                        {"plugin_changes", plugin_changes_json(run.plugin_changes)}};
    if (!a.dump.empty()) {
      j["dump"] = a.dump;
      j["dump_seconds"] = dump_s;  // in the writer: its appends are part of "seconds", opening and commit not
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s (run %s, step %lld): %s %s %.6f, ppl %.4f over %lld tokens (%s, windows of %lld, %.1f s)\n",
                a.checkpoint.c_str(), run.cfg.name.c_str(), static_cast<long long>(run.step), a.split.c_str(),
                unit.c_str(), r.bits_per_token(), r.perplexity(), static_cast<long long>(r.tokens), a.mode.c_str(),
                static_cast<long long>(T), r.seconds);
    if (!a.dump.empty())
      std::printf("predictions (%s): %s (writing them took %.2f s)\n", a.dump_dtype.c_str(), a.dump.c_str(), dump_s);
  }
}

struct SampleArgs {
  std::string checkpoint, prompt, mode = "parallel";
  SampleOptions opt;
  bool allow_plugin_change = false;
};

void run_sample(SampleArgs a) {
  SavedRun run = load_saved_run(a.checkpoint, a.allow_plugin_change);
  a.opt.mode = a.mode == "parallel" ? EvalMode::Parallel : EvalMode::Recurrent;
  a.opt.kv_cache = a.mode == "cached";
  if (a.mode == "recurrent" && !run.model->recurrent_unsupported().empty() && run.model->generation_unsupported().empty())
    throw Error("--mode recurrent", cat(run.model->recurrent_unsupported(), ": --mode cached runs it with its KV cache"));
  std::vector<int32_t> prompt;
  if (a.prompt.empty()) {
    // No prompt: start from a newline (or the first token when the vocabulary has none).
    prompt = {0};
    for (size_t i = 0; i < run.tokenizer.vocab().size(); ++i)
      if (run.tokenizer.vocab()[i] == "\n") prompt = {static_cast<int32_t>(i)};
  } else {
    prompt = run.tokenizer.encode(a.prompt);
    std::fputs(a.prompt.c_str(), stdout);
  }
  sample(*run.model, prompt, a.opt, [&](int32_t id) {
    std::fputs(run.tokenizer.decode({id}).c_str(), stdout);
    if (run.tokenizer.kind() == Tokenizer::Kind::Word) std::fputc(' ', stdout);
    std::fflush(stdout);
  });
  std::fputc('\n', stdout);
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "Bits per character (or per word) of a checkpoint over a whole split");
  cmd->add_option("checkpoint", a->checkpoint, "checkpoint .h5 written by `nanoattn run`")->required();
  cmd->add_option("--split", a->split, "which split")->check(CLI::IsMember({"train", "val", "test"}))->capture_default_str();
  cmd->add_option("--mode", a->mode, "parallel windows, or token by token through the RNN form")
      ->check(CLI::IsMember({"parallel", "recurrent"}))->capture_default_str();
  cmd->add_option("--seq-len", a->seq_len, "window length (default: the run's eval.seq_len)")->check(CLI::PositiveNumber);
  cmd->add_option("--batch-size", a->batch_size, "windows per forward (default: the run's eval.batch_size)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", a->threads, "worker threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->add_flag("--allow-plugin-change", a->allow_plugin_change,
                "go on even if an attention plugin's .so differs from the one the checkpoint was trained with (recorded in the JSON)");
  cmd->add_option("--dump", a->dump, "also write every token's log-probabilities to this HDF5 file (see docs/FORMATS.md)");
  cmd->add_option("--dump-dtype", a->dump_dtype, "the dump's log-probabilities")
      ->check(CLI::IsMember({"float32", "float16"}))->capture_default_str();
  cmd->add_option("--top-k", a->top_k, "dump only each token's K likeliest tokens and their log-probabilities (a "
                                       "distillation teacher; `kl` needs full ones); 0 = full distributions")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->callback([a] { run_eval(*a); });
}

void add_sample_command(CLI::App& app) {
  auto a = std::make_shared<SampleArgs>();
  auto* cmd = app.add_subcommand("sample", "Generate text from a checkpoint");
  cmd->add_option("checkpoint", a->checkpoint, "checkpoint .h5 written by `nanoattn run`")->required();
  cmd->add_option("--tokens", a->opt.tokens, "tokens to generate")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--prompt", a->prompt, "text to continue (default: a newline)");
  cmd->add_option("--temperature", a->opt.temperature, "softmax temperature")->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--top-k", a->opt.top_k, "sample among the k likeliest tokens (0 = all)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--seed", a->opt.seed, "random seed")->capture_default_str();
  cmd->add_option("--mode", a->mode, "parallel (re-reads the context), recurrent (RNN form, constant memory) or "
                                     "cached (token by token with RNN states or KV caches, e.g. softmax's)")
      ->check(CLI::IsMember({"parallel", "recurrent", "cached"}))->capture_default_str();
  cmd->add_flag("--allow-plugin-change", a->allow_plugin_change,
                "go on even if an attention plugin's .so differs from the one the checkpoint was trained with");
  cmd->callback([a] { run_sample(*a); });
}

}  // namespace na::cli
