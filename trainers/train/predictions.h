// Evaluation that also writes a prediction dump (`nanoattn eval --dump`, a run's `eval.dump`,
// and the val dumps `compare_to` needs): evaluate()'s per-token sink streamed into a
// PredictionDumpWriter, committed under its final name only when the whole split is done.
#pragma once
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "dump/prediction_dump.h"
#include "experiment/experiment.h"
#include "train/evaluate.h"

namespace na {

// The dump's attributes for a run's model evaluated on `split`.
DumpInfo make_dump_info(const RunConfig& cfg, const Tokenizer& tokenizer, const std::string& checkpoint, int64_t step,
                        const std::string& split, EvalMode mode, int64_t seq_len, DumpDtype dtype);

// evaluate() with every token written to `path` (atomically: nothing appears there on failure).
// `dump_seconds`: the wall time spent in the writer (copy, float16 rounding, compression,
// writes, commit), i.e. what the dump adds to the evaluation.
EvalResult evaluate_with_dump(const Model& model, const std::vector<int32_t>& stream, int64_t T, int64_t B,
                              EvalMode mode, const std::string& path, const DumpInfo& info,
                              double* dump_seconds = nullptr);

// The dump file of a split in a run folder: <run_dir>/preds_<split>.h5.
std::string run_dump_path(const std::string& run_dir, const std::string& split);

}  // namespace na
