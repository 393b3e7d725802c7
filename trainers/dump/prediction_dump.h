// Prediction dumps: for every evaluated token of a split, the input token, the target, its
// position in the context window, the unsmoothed NLL and the full-vocabulary log-probabilities
// (or, in a top-k dump, only the k likeliest tokens and their log-probabilities: teachers for
// distillation), in one HDF5 file that h5py and h5dump read (layout: docs/FORMATS.md,
// "Prediction dumps").
//
// The writer streams: it holds one block of rows (four HDF5 chunks of log-probabilities, about
// 1 MiB) and writes it out, compressed, when full, so memory does not depend on the split's
// size. It writes to a temporary file next to the final name and renames it there only
// in commit(): a killed or failed writer never leaves a half file under the final name.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dump/h5_rows.h"
#include "io/h5.h"
#include "nanoattn/error.h"

namespace na {

enum class DumpDtype { Float32, Float16 };
DumpDtype parse_dump_dtype(const std::string& name, const std::string& where);  // "float32" | "float16"
const char* dump_dtype_name(DumpDtype d);

// What the dump says about itself: its root attributes.
struct DumpInfo {
  std::string model;        // the attention plugins of the model, e.g. "softmax", "linear"
  std::string run_name, experiment;
  std::string config;       // the run's resolved YAML
  std::string checkpoint;   // the checkpoint's path, as given ("" when dumped during training)
  int64_t checkpoint_step = 0;
  std::string split;        // train | val | test
  std::string mode;         // parallel | recurrent
  int64_t seq_len = 0;      // evaluation window length
  std::string unit;         // bpc (char level) | bpw (word level)
  std::string corpus;
  std::string tokenizer;    // Tokenizer::serialize(): the exact vocabulary
  std::vector<std::string> vocab;  // id -> token bytes (stored as UTF-8 text, see vocab_text)
  DumpDtype dtype = DumpDtype::Float32;
  int64_t top_k = 0;        // 0: /logprobs (N, V); k: /topk_ids and /topk_logprobs (N, k) instead
};

// A token's bytes as text for /vocab: as they are when valid UTF-8 without NUL, otherwise every
// byte >= 0x80 or NUL as "\xNN" (char-level tokens of multi-byte text are single bytes).
std::string vocab_text(const std::string& token);

struct DumpWriterOptions {
  int64_t chunk_rows = 0;        // rows per /logprobs chunk; 0 = about 256 KiB of log-probabilities
  int64_t chunks_per_block = 4;  // a block (rows held, then written) is this many chunks; the
                                 // 1-D datasets use one chunk per block
  int deflate = 1;               // zlib level 1-9 (after the shuffle filter); 0 = uncompressed
};

class PredictionDumpWriter {
 public:
  static constexpr int64_t kFormatVersion = 1;      // full distributions
  static constexpr int64_t kTopKFormatVersion = 2;  // top-k layout (older readers must refuse it)
  PredictionDumpWriter(std::string path, DumpInfo info, DumpWriterOptions opt = {});
  PredictionDumpWriter(const PredictionDumpWriter&) = delete;
  PredictionDumpWriter& operator=(const PredictionDumpWriter&) = delete;
  ~PredictionDumpWriter();  // without commit(): removes the temporary file

  // A failed append() or commit() (a full disk, a read-only file system) removes the temporary
  // file at once and throws an na::Error naming the dump (and the free space when the disk is
  // full); the writer then refuses further rows.

  // `rows` tokens: inputs, targets, positions and nll of length rows; logprobs (rows, V) (a
  // top-k dump keeps the k likeliest of each row).
  void append(std::span<const int32_t> inputs, std::span<const int32_t> targets,
              std::span<const int32_t> positions, const float* logprobs, std::span<const float> nll);
  // Writes the last partial block and the summary attributes, fsyncs, renames into place.
  void commit();

  int64_t rows() const { return rows_; }  // rows written to the file so far
  const std::string& temp_path() const { return tmp_; }
  int64_t chunk_rows() const { return chunk_rows_; }
  int64_t block_rows() const { return block_rows_; }
  // One block of rows: block_rows * (V * element size + 16) bytes.
  size_t block_bytes() const;
  // Bytes the writer holds: the block, plus compression buffers of one shuffled and one
  // compressed copy of each chunk of a block (deflate's worst case is +0.03%): at most
  // 3.01 * block_bytes(), whatever the number of rows appended.
  size_t buffered_bytes() const;
  size_t peak_buffered_bytes() const { return peak_; }

 private:
  void flush_block();
  void remove_temp() noexcept;                 // closes (discarding) and deletes the temporary file
  [[noreturn]] void fail(const Error& e);      // remove_temp(), then throws naming the dump
  std::string path_, tmp_;
  DumpInfo info_;
  int64_t V_, W_, chunk_rows_, block_rows_;  // W_: stored log-probabilities per row (V, or top_k)
  h5::File file_;
  std::vector<h5::RowWriter> sets_;  // tokens, targets, positions, nll, logprobs [, topk_ids]
  std::vector<int32_t> in_, tg_, pos_;
  std::vector<float> nll_, lp32_, topv_;
  std::vector<uint16_t> lp16_;
  std::vector<int32_t> ids_;  // top-k ids of the block
  int64_t filled_ = 0, rows_ = 0;
  double nll_sum_ = 0;
  size_t peak_ = 0;
  bool closed_ = false;  // committed, or the temporary file removed after a failure
};

// Opens a dump for reading in blocks. open() checks everything a reader relies on and throws
// na::Error naming the file, the dataset and the fix: missing, not HDF5, truncated, not a
// dump (e.g. a checkpoint), another format version, a missing dataset or attribute, datasets
// of different lengths, a vocabulary of another size.
class PredictionDump {
 public:
  static PredictionDump open(const std::string& path);

  const std::string& path() const { return path_; }
  const DumpInfo& info() const { return info_; }
  int64_t rows() const { return rows_; }
  int64_t vocab_size() const { return V_; }
  double bits_per_token() const { return bits_; }
  int64_t chunk_rows() const { return lp_.chunk_rows(); }

  void read_tokens(int64_t begin, int64_t count, int32_t* out) const { tokens_.read_i32(begin, count, out); }
  void read_targets(int64_t begin, int64_t count, int32_t* out) const { targets_.read_i32(begin, count, out); }
  void read_positions(int64_t begin, int64_t count, int32_t* out) const { positions_.read_i32(begin, count, out); }
  void read_nll(int64_t begin, int64_t count, float* out) const { nll_.read_f32(begin, count, out); }
  int64_t top_k() const { return info_.top_k; }  // 0: full distributions
  // (count, V) float32 (float16 dumps are converted). Refused for a top-k dump, naming `user`.
  void read_logprobs(int64_t begin, int64_t count, float* out) const;
  // A top-k dump's rows: ids (count, k) and their log-probabilities (count, k) as float32.
  void read_top_k(int64_t begin, int64_t count, int32_t* ids, float* logprobs) const;
  // Throws, naming the file and `who`, unless the dump holds full distributions.
  void require_full(const std::string& who) const;

 private:
  PredictionDump(std::string path, h5::File file, DumpInfo info, h5::RowReader tokens, h5::RowReader targets,
                 h5::RowReader positions, h5::RowReader nll, h5::RowReader lp, std::optional<h5::RowReader> ids);
  std::string path_;
  h5::File file_;
  DumpInfo info_;
  h5::RowReader tokens_, targets_, positions_, nll_, lp_;  // lp_: /logprobs, or /topk_logprobs
  std::optional<h5::RowReader> ids_;                        // /topk_ids of a top-k dump
  int64_t rows_ = 0, V_ = 0;
  double bits_ = 0;
};

}  // namespace na
