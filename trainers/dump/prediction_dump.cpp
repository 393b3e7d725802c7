#include "dump/prediction_dump.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "data/sha256.h"
#include "dump/half.h"
#include "dump/top_k.h"
#include "nanoattn/error.h"
#include "nanoattn/version.h"
#include "util/files.h"

namespace na {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFormat = "nanoattn-predictions";
constexpr const char* kRemake = "write it again with `nanoattn eval <checkpoint> --dump <file>`";
constexpr int64_t kTargetChunkBytes = int64_t{1} << 18;

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || c == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += n;
  }
  return true;
}

// The temporary file, with errors naming the dump's final path.
h5::File create_temp(const std::string& path, const std::string& tmp) {
  try {
    return h5::File::create(tmp);
  } catch (const Error& e) {
    const std::string full = space_hint(e.message(), path);
    throw Error(path, cat("cannot write the dump (", e.message(), ")",
                          full.empty() ? ": check that the folder exists and is writable" : full));
  }
}

}  // namespace

DumpDtype parse_dump_dtype(const std::string& name, const std::string& where) {
  if (name == "float32") return DumpDtype::Float32;
  if (name == "float16") return DumpDtype::Float16;
  throw Error(where, cat("dump dtype '", name, "': use float32 or float16"));
}

const char* dump_dtype_name(DumpDtype d) { return d == DumpDtype::Float16 ? "float16" : "float32"; }

std::string vocab_text(const std::string& token) {
  if (valid_utf8(token)) return token;
  std::string out;
  for (char ch : token) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80 || c == 0) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

// ---- writer --------------------------------------------------------------------------------

PredictionDumpWriter::PredictionDumpWriter(std::string path, DumpInfo info, DumpWriterOptions opt)
    : path_(std::move(path)), tmp_(temp_path_for(path_)), info_(std::move(info)),
      V_(static_cast<int64_t>(info_.vocab.size())), W_(info_.top_k > 0 ? info_.top_k : V_),
      chunk_rows_(opt.chunk_rows > 0 ? opt.chunk_rows
                                     : std::max<int64_t>(1, kTargetChunkBytes / std::max<int64_t>(1, W_) /
                                                                (info_.dtype == DumpDtype::Float16 ? 2 : 4))),
      block_rows_(chunk_rows_ * std::max<int64_t>(1, opt.chunks_per_block)),
      file_(create_temp(path_, tmp_)) {
  try {
    NA_CHECK(V_ > 0, path_, "a prediction dump needs a vocabulary");
    NA_CHECK(info_.top_k >= 0 && info_.top_k < V_, path_, "--top-k ", info_.top_k, " must be in [0, ", V_,
             ") (0: full distributions; the vocabulary has ", V_, " tokens)");
    NA_CHECK(opt.deflate >= 0 && opt.deflate <= 9, path_, "deflate level ", opt.deflate, " is not in 0..9");
    const h5::Elem lp = info_.dtype == DumpDtype::Float16 ? h5::Elem::F16 : h5::Elem::F32;
    for (const char* name : {"/tokens", "/targets", "/positions"})
      sets_.emplace_back(file_, name, h5::Elem::I32, 0, block_rows_, opt.deflate);
    sets_.emplace_back(file_, "/nll", h5::Elem::F32, 0, block_rows_, opt.deflate);
    if (info_.top_k > 0) {
      sets_.emplace_back(file_, "/topk_logprobs", lp, W_, chunk_rows_, opt.deflate);
      sets_.emplace_back(file_, "/topk_ids", h5::Elem::I32, W_, chunk_rows_, opt.deflate);
    } else {
      sets_.emplace_back(file_, "/logprobs", lp, V_, chunk_rows_, opt.deflate);
    }
    std::vector<std::string> vocab;
    for (const std::string& t : info_.vocab) vocab.push_back(vocab_text(t));
    h5::write_strings(file_, "/vocab", vocab);
  } catch (...) {
    remove_temp();
    throw;
  }
  in_.resize(block_rows_);
  tg_.resize(block_rows_);
  pos_.resize(block_rows_);
  nll_.resize(block_rows_);
  if (info_.dtype == DumpDtype::Float16)
    lp16_.resize(static_cast<size_t>(block_rows_ * W_));
  else
    lp32_.resize(static_cast<size_t>(block_rows_ * W_));
  if (info_.top_k > 0) {
    ids_.resize(static_cast<size_t>(block_rows_ * W_));
    topv_.resize(static_cast<size_t>(W_));
  }
  peak_ = buffered_bytes();
}

PredictionDumpWriter::~PredictionDumpWriter() { remove_temp(); }

void PredictionDumpWriter::remove_temp() noexcept {
  if (closed_) return;
  closed_ = true;
  file_.discard();  // first: closing the datasets and the file then cannot fail on the disk
  sets_.clear();
  try {
    file_.close();
  } catch (...) {
  }
  std::error_code ec;
  fs::remove(tmp_, ec);
}

void PredictionDumpWriter::fail(const Error& e) {
  remove_temp();  // before measuring the free space: our partial file no longer counts
  throw Error(path_, cat("prediction dump not written (any previous file there is untouched): ", e.what(),
                         space_hint(e.what(), path_)));
}

size_t PredictionDumpWriter::buffered_bytes() const {
  size_t n = (in_.capacity() + tg_.capacity() + pos_.capacity() + ids_.capacity()) * sizeof(int32_t) +
             (nll_.capacity() + lp32_.capacity() + topv_.capacity()) * sizeof(float) +
             lp16_.capacity() * sizeof(uint16_t);
  for (const h5::RowWriter& s : sets_) n += s.scratch_bytes();
  return n;
}

size_t PredictionDumpWriter::block_bytes() const {
  return static_cast<size_t>(block_rows_) *
         static_cast<size_t>(W_ * (info_.dtype == DumpDtype::Float16 ? 2 : 4) + (info_.top_k > 0 ? 4 * W_ : 0) + 16);
}

void PredictionDumpWriter::append(std::span<const int32_t> inputs, std::span<const int32_t> targets,
                                  std::span<const int32_t> positions, const float* logprobs,
                                  std::span<const float> nll) {
  NA_CHECK(!closed_, path_, "rows appended after commit() or after a failed write");
  const size_t n = inputs.size();
  NA_CHECK(targets.size() == n && positions.size() == n && nll.size() == n && (n == 0 || logprobs), path_,
           "append: ", n, " inputs but ", targets.size(), " targets, ", positions.size(), " positions, ", nll.size(),
           " nll");
  for (size_t done = 0; done < n;) {
    const size_t take = std::min<size_t>(n - done, static_cast<size_t>(block_rows_ - filled_));
    std::copy_n(inputs.begin() + done, take, in_.begin() + filled_);
    std::copy_n(targets.begin() + done, take, tg_.begin() + filled_);
    std::copy_n(positions.begin() + done, take, pos_.begin() + filled_);
    std::copy_n(nll.begin() + done, take, nll_.begin() + filled_);
    for (size_t r = 0; r < take; ++r) nll_sum_ += nll[done + r];  // stream order, as evaluate() sums
    const float* src = logprobs + done * V_;
    const size_t count = take * static_cast<size_t>(V_);
    if (info_.top_k > 0) {
      for (size_t r = 0; r < take; ++r) {  // the k likeliest of each row, as a live teacher picks them
        int32_t* ids = ids_.data() + (filled_ + static_cast<int64_t>(r)) * W_;
        float* dst32 = lp32_.empty() ? topv_.data() : lp32_.data() + (filled_ + static_cast<int64_t>(r)) * W_;
        top_k_rows(src + r * V_, 1, V_, W_, ids, dst32);
        if (!lp16_.empty())
          for (int64_t j = 0; j < W_; ++j) lp16_[(filled_ + static_cast<int64_t>(r)) * W_ + j] = float_to_half(dst32[j]);
      }
    } else if (info_.dtype == DumpDtype::Float16) {
      uint16_t* dst = lp16_.data() + filled_ * V_;
      for (size_t i = 0; i < count; ++i) dst[i] = float_to_half(src[i]);
    } else {
      std::copy_n(src, count, lp32_.data() + filled_ * V_);
    }
    filled_ += static_cast<int64_t>(take);
    done += take;
    if (filled_ == block_rows_) {
      try {
        flush_block();
      } catch (const Error& e) {
        fail(e);
      }
    }
  }
  peak_ = std::max(peak_, buffered_bytes());
}

void PredictionDumpWriter::flush_block() {
  if (filled_ == 0) return;
  sets_[0].append(in_.data(), filled_);
  sets_[1].append(tg_.data(), filled_);
  sets_[2].append(pos_.data(), filled_);
  sets_[3].append(nll_.data(), filled_);
  sets_[4].append(info_.dtype == DumpDtype::Float16 ? static_cast<const void*>(lp16_.data()) : lp32_.data(), filled_);
  if (info_.top_k > 0) sets_[5].append(ids_.data(), filled_);
  rows_ += filled_;
  filled_ = 0;
}

void PredictionDumpWriter::commit() {
  NA_CHECK(!closed_, path_, "commit() called twice, or after a failed write");
  try {
    flush_block();
    for (h5::RowWriter& s : sets_) s.close();
    h5::File& f = file_;
    f.set_attr_string("/", "format", kFormat);
    f.set_attr_int64("/", "format_version", info_.top_k > 0 ? kTopKFormatVersion : kFormatVersion);
    f.set_attr_string("/", "nanoattn_version", NANOATTN_VERSION);
    f.set_attr_string("/", "model", info_.model);
    f.set_attr_string("/", "run_name", info_.run_name);
    f.set_attr_string("/", "experiment", info_.experiment);
    f.set_attr_string("/", "config", info_.config);
    f.set_attr_string("/", "config_sha256", sha256_hex(info_.config));
    f.set_attr_string("/", "checkpoint", info_.checkpoint);
    f.set_attr_int64("/", "checkpoint_step", info_.checkpoint_step);
    f.set_attr_string("/", "split", info_.split);
    f.set_attr_string("/", "mode", info_.mode);
    f.set_attr_int64("/", "seq_len", info_.seq_len);
    f.set_attr_string("/", "unit", info_.unit);
    f.set_attr_string("/", "corpus", info_.corpus);
    f.set_attr_string("/", "tokenizer", info_.tokenizer);
    f.set_attr_string("/", "dtype", dump_dtype_name(info_.dtype));
    f.set_attr_int64("/", "vocab_size", V_);
    if (info_.top_k > 0) f.set_attr_int64("/", "top_k", info_.top_k);
    f.set_attr_int64("/", "tokens", rows_);
    f.set_attr_double("/", "bits_per_token", rows_ ? nll_sum_ / rows_ / std::log(2.0) : NAN);
    f.flush();
    f.close();
  } catch (const Error& e) {
    fail(e);
  }
  closed_ = true;
  commit_file(tmp_, path_);  // fsync, rename over path_, fsync the folder; removes tmp_ on failure
}

// ---- reader --------------------------------------------------------------------------------

PredictionDump::PredictionDump(std::string path, h5::File file, DumpInfo info, h5::RowReader tokens,
                               h5::RowReader targets, h5::RowReader positions, h5::RowReader nll, h5::RowReader lp,
                               std::optional<h5::RowReader> ids)
    : path_(std::move(path)), file_(std::move(file)), info_(std::move(info)), tokens_(std::move(tokens)),
      targets_(std::move(targets)), positions_(std::move(positions)), nll_(std::move(nll)), lp_(std::move(lp)),
      ids_(std::move(ids)) {}

void PredictionDump::require_full(const std::string& who) const {
  NA_CHECK(info_.top_k == 0, path_, "a top-k dump (top_k = ", info_.top_k, ": only each token's ", info_.top_k,
           " likeliest log-probabilities), but ", who, " needs full distributions: write the dump again without "
           "--top-k (`nanoattn eval <checkpoint> --dump <file>`)");
}

void PredictionDump::read_logprobs(int64_t begin, int64_t count, float* out) const {
  require_full("reading /logprobs");
  lp_.read_f32(begin, count, out);
}

void PredictionDump::read_top_k(int64_t begin, int64_t count, int32_t* ids, float* logprobs) const {
  NA_CHECK(ids_, path_, "holds full distributions, not a top-k layout (no /topk_ids)");
  ids_->read_i32(begin, count, ids);
  lp_.read_f32(begin, count, logprobs);
}

PredictionDump PredictionDump::open(const std::string& path) {
  h5::File f = h5::File::open(path);
  NA_CHECK(f.has_attr("/", "format"), path,
           "an HDF5 file, but not a nanoattn prediction dump (it has no 'format' attribute on /): pass a dump "
           "written by `nanoattn eval <checkpoint> --dump <file>`");
  const std::string format = f.attr_string("/", "format");
  NA_CHECK(format != "nanoattn-checkpoint", path,
           "a nanoattn checkpoint, not a prediction dump: make a dump of it with `nanoattn eval ", path,
           " --dump preds.h5`");
  NA_CHECK(format == kFormat, path, "an HDF5 file, but not a nanoattn prediction dump: its 'format' attribute is '",
           format, "', expected '", kFormat, "'");
  NA_CHECK(f.has_attr("/", "format_version"), path, "attribute 'format_version' of / is missing: ", kRemake);
  const int64_t version = f.attr_int64("/", "format_version");
  NA_CHECK(version == PredictionDumpWriter::kFormatVersion || version == PredictionDumpWriter::kTopKFormatVersion, path,
           "written by dump format version ", version, ", this nanoattn reads version ",
           PredictionDumpWriter::kFormatVersion, " (full distributions) and ", PredictionDumpWriter::kTopKFormatVersion,
           " (top-k): read it with the nanoattn that wrote it, or ", kRemake);
  const bool top = version == PredictionDumpWriter::kTopKFormatVersion;
  NA_CHECK(!top || f.has_attr("/", "top_k"), path, "attribute 'top_k' of / is missing (a version-2 dump is a "
           "top-k dump): the dump is incomplete or damaged: ", kRemake);
  for (const char* name : {"model", "run_name", "experiment", "config", "checkpoint", "checkpoint_step", "split", "mode",
                           "seq_len", "unit", "corpus", "tokenizer", "dtype", "vocab_size", "tokens", "bits_per_token"})
    NA_CHECK(f.has_attr("/", name), path, "attribute '", name, "' of / is missing: the dump is incomplete or damaged: ",
             kRemake);
  std::vector<const char*> datasets = {"/tokens", "/targets", "/positions", "/nll", "/vocab"};
  for (const char* name : top ? std::vector<const char*>{"/topk_ids", "/topk_logprobs"} : std::vector<const char*>{"/logprobs"})
    datasets.push_back(name);
  for (const char* name : datasets)
    NA_CHECK(f.has_dataset(name), path, "dataset ", name, " is missing: the dump is incomplete or damaged: ", kRemake);
  DumpInfo info;
  info.model = f.attr_string("/", "model");
  info.run_name = f.attr_string("/", "run_name");
  info.experiment = f.attr_string("/", "experiment");
  info.config = f.attr_string("/", "config");
  info.checkpoint = f.attr_string("/", "checkpoint");
  info.checkpoint_step = f.attr_int64("/", "checkpoint_step");
  info.split = f.attr_string("/", "split");
  info.mode = f.attr_string("/", "mode");
  info.seq_len = f.attr_int64("/", "seq_len");
  info.unit = f.attr_string("/", "unit");
  info.corpus = f.attr_string("/", "corpus");
  info.tokenizer = f.attr_string("/", "tokenizer");
  info.dtype = parse_dump_dtype(f.attr_string("/", "dtype"), path + ": attribute 'dtype' of /");
  info.vocab = h5::read_strings(f, "/vocab");
  info.top_k = top ? f.attr_int64("/", "top_k") : 0;
  using K = h5::RowReader::Kind;
  const char* lp_name = top ? "/topk_logprobs" : "/logprobs";
  h5::RowReader tokens(f, "/tokens", K::Integer), targets(f, "/targets", K::Integer),
      positions(f, "/positions", K::Integer), nll(f, "/nll", K::Float), lp(f, lp_name, K::Float);
  std::optional<h5::RowReader> ids;
  if (top) ids.emplace(f, "/topk_ids", K::Integer);
  const int64_t N = lp.rows(), V = top ? static_cast<int64_t>(info.vocab.size()) : lp.width();
  NA_CHECK(lp.rank() == 2, path, "dataset ", lp_name, ": expected (tokens, ", top ? "top_k" : "vocabulary",
           "), found a 1-D dataset: ", kRemake);
  const h5::RowReader* idp = ids ? &*ids : nullptr;
  std::vector<const h5::RowReader*> rows = {&tokens, &targets, &positions, &nll};
  if (idp) rows.push_back(idp);
  for (const h5::RowReader* r : rows)
    NA_CHECK(r->rank() == (r == idp ? 2 : 1) && r->rows() == N, path, "dataset ", r->name(), " has ", r->rows(),
             " rows", r->rank() == (r == idp ? 2 : 1) ? "" : " (and another rank)", " but ", lp_name, " has ", N,
             ": the dump is damaged: ", kRemake);
  NA_CHECK(static_cast<int64_t>(info.vocab.size()) == V, path, "dataset /vocab has ", info.vocab.size(),
           " entries but /logprobs has ", V, " columns: the dump is damaged: ", kRemake);
  NA_CHECK(!top || (info.top_k >= 1 && info.top_k < V && lp.width() == info.top_k && ids->width() == info.top_k),
           path, "attribute 'top_k' is ", info.top_k, " but /topk_logprobs has ", lp.width(), " columns and /topk_ids ",
           ids ? ids->width() : 0, " (vocabulary ", V, "): the dump is damaged: ", kRemake);
  NA_CHECK(f.attr_int64("/", "tokens") == N, path, "attribute 'tokens' says ", f.attr_int64("/", "tokens"),
           " but the datasets have ", N, " rows: the dump is damaged: ", kRemake);
  const double bits = f.attr_double("/", "bits_per_token");
  PredictionDump d(path, std::move(f), std::move(info), std::move(tokens), std::move(targets), std::move(positions),
                   std::move(nll), std::move(lp), std::move(ids));
  d.rows_ = N;
  d.V_ = V;
  d.bits_ = bits;
  return d;
}

}  // namespace na
