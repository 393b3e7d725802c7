#include "train/predictions.h"

#include <chrono>
#include <filesystem>

#include "train/trainer.h"

namespace na {

DumpInfo make_dump_info(const RunConfig& cfg, const Tokenizer& tokenizer, const std::string& checkpoint, int64_t step,
                        const std::string& split, EvalMode mode, int64_t seq_len, DumpDtype dtype) {
  DumpInfo info;
  info.model = attention_plugins(cfg);
  info.run_name = cfg.name;
  info.experiment = cfg.experiment;
  info.config = cfg.resolved_text();
  info.checkpoint = checkpoint;
  info.checkpoint_step = step;
  info.split = split;
  info.mode = mode == EvalMode::Recurrent ? "recurrent" : "parallel";
  info.seq_len = seq_len;
  info.unit = tokenizer.kind() == Tokenizer::Kind::Char ? "bpc" : "bpw";
  info.corpus = cfg.data.name_or_path;
  info.tokenizer = tokenizer.serialize();
  info.vocab = tokenizer.vocab();
  info.dtype = dtype;
  return info;
}

EvalResult evaluate_with_dump(const Model& model, const std::vector<int32_t>& stream, int64_t T, int64_t B,
                              EvalMode mode, const std::string& path, const DumpInfo& info, double* dump_seconds) {
  using Clock = std::chrono::steady_clock;
  Clock::duration in_writer{};
  auto t0 = Clock::now();
  PredictionDumpWriter writer(path, info);
  in_writer += Clock::now() - t0;
  EvalResult r = evaluate(model, stream, T, B, mode, [&](const EvalRows& rows) {
    const auto t = Clock::now();
    writer.append(rows.inputs, rows.targets, rows.positions, rows.logprobs, rows.nll);
    in_writer += Clock::now() - t;
  });
  t0 = Clock::now();
  writer.commit();
  in_writer += Clock::now() - t0;
  if (dump_seconds) *dump_seconds = std::chrono::duration<double>(in_writer).count();
  return r;
}

std::string run_dump_path(const std::string& run_dir, const std::string& split) {
  return (std::filesystem::path(run_dir) / ("preds_" + split + ".h5")).string();
}

}  // namespace na
