#include "dump/kl_file.h"

#include <filesystem>
#include <utility>

#include "nanoattn/error.h"
#include "nanoattn/version.h"
#include "util/files.h"

namespace na {
namespace fs = std::filesystem;
namespace {

h5::File create_temp(const std::string& path, const std::string& tmp) {
  try {
    return h5::File::create(tmp);
  } catch (const Error& e) {
    const std::string full = space_hint(e.message(), path);
    throw Error(path, cat("cannot write the KL file (", e.message(), ")",
                          full.empty() ? ": check that the folder exists and is writable" : full));
  }
}

void set_stats(h5::File& f, const std::string& prefix, const DivStats& s) {
  f.set_attr_double("/", prefix + "_mean", s.mean);
  f.set_attr_double("/", prefix + "_median", s.median);
  f.set_attr_double("/", prefix + "_p90", s.p90);
  f.set_attr_double("/", prefix + "_p99", s.p99);
  f.set_attr_double("/", prefix + "_max", s.max);
}

// (buckets, 5): mean, median, p90, p99, max of one divergence per bucket.
void write_bucket_stats(h5::File& f, const std::string& name, const std::vector<KlBucket>& buckets,
                        DivStats KlBucket::*member) {
  std::vector<double> v;
  for (const KlBucket& b : buckets) {
    const DivStats& s = b.*member;
    v.insert(v.end(), {s.mean, s.median, s.p90, s.p99, s.max});
  }
  h5::write_small(f, name, h5::Elem::F64, {static_cast<int64_t>(buckets.size()), 5}, v.data());
  f.set_attr_string(name, "columns", "mean,median,p90,p99,max");
}

}  // namespace

KlFileWriter::KlFileWriter(std::string path, int64_t chunk_rows)
    : path_(std::move(path)), tmp_(temp_path_for(path_)), file_(create_temp(path_, tmp_)) {
  try {
    for (const char* name : {"/kl_ab", "/kl_ba", "/js"}) sets_.emplace_back(file_, name, h5::Elem::F64, 0, chunk_rows, 1);
    sets_.emplace_back(file_, "/positions", h5::Elem::I32, 0, chunk_rows, 1);
  } catch (...) {
    remove_temp();
    throw;
  }
}

KlFileWriter::~KlFileWriter() { remove_temp(); }

void KlFileWriter::remove_temp() noexcept {
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

void KlFileWriter::fail(const Error& e) {
  remove_temp();  // before measuring the free space: our partial file no longer counts
  throw Error(path_, cat("KL file not written (any previous file there is untouched): ", e.what(),
                         space_hint(e.what(), path_)));
}

void KlFileWriter::append(const double* kl_ab, const double* kl_ba, const double* js, const int32_t* positions,
                          int64_t rows) {
  NA_CHECK(!closed_, path_, "rows appended after commit() or after a failed write");
  try {
    sets_[0].append(kl_ab, rows);
    sets_[1].append(kl_ba, rows);
    sets_[2].append(js, rows);
    sets_[3].append(positions, rows);
  } catch (const Error& e) {
    fail(e);
  }
}

void KlFileWriter::commit(const KlReport& r) {
  NA_CHECK(!closed_, path_, "commit() called twice, or after a failed write");
  try {
    for (h5::RowWriter& s : sets_) s.close();
    h5::File& f = file_;
    f.set_attr_string("/", "format", "nanoattn-kl");
    f.set_attr_int64("/", "format_version", kFormatVersion);
    f.set_attr_string("/", "nanoattn_version", NANOATTN_VERSION);
    f.set_attr_string("/", "units", "bits");
    f.set_attr_string("/", "dump_a", r.path_a);
    f.set_attr_string("/", "dump_b", r.path_b);
    f.set_attr_string("/", "run_a", r.a.run_name);
    f.set_attr_string("/", "run_b", r.b.run_name);
    f.set_attr_string("/", "model_a", r.a.model);
    f.set_attr_string("/", "model_b", r.b.model);
    f.set_attr_string("/", "split", r.a.split);
    f.set_attr_string("/", "unit", r.a.unit);
    f.set_attr_int64("/", "tokens", r.tokens);
    f.set_attr_int64("/", "vocab_size", r.vocab);
    f.set_attr_double("/", "bits_a", r.bits_a);
    f.set_attr_double("/", "bits_b", r.bits_b);
    set_stats(f, "kl_ab", r.kl_ab);
    set_stats(f, "kl_ba", r.kl_ba);
    set_stats(f, "js", r.js);

    const int64_t P = static_cast<int64_t>(r.pos_tokens.size());
    h5::write_small(f, "/by_position/tokens", h5::Elem::I64, {P}, r.pos_tokens.data());
    h5::write_small(f, "/by_position/kl_ab", h5::Elem::F64, {P}, r.pos_kl_ab.data());
    h5::write_small(f, "/by_position/kl_ba", h5::Elem::F64, {P}, r.pos_kl_ba.data());
    h5::write_small(f, "/by_position/js", h5::Elem::F64, {P}, r.pos_js.data());
    h5::write_small(f, "/by_position/bits_a", h5::Elem::F64, {P}, r.pos_bits_a.data());
    h5::write_small(f, "/by_position/bits_b", h5::Elem::F64, {P}, r.pos_bits_b.data());

    const int64_t nb = static_cast<int64_t>(r.buckets.size());
    std::vector<int64_t> first, last, tokens;
    std::vector<double> bits_a, bits_b;
    for (const KlBucket& b : r.buckets) {
      first.push_back(b.first);
      last.push_back(b.last);
      tokens.push_back(b.tokens);
      bits_a.push_back(b.bits_a);
      bits_b.push_back(b.bits_b);
    }
    h5::write_small(f, "/buckets/first", h5::Elem::I64, {nb}, first.data());
    h5::write_small(f, "/buckets/last", h5::Elem::I64, {nb}, last.data());
    h5::write_small(f, "/buckets/tokens", h5::Elem::I64, {nb}, tokens.data());
    write_bucket_stats(f, "/buckets/kl_ab", r.buckets, &KlBucket::kl_ab);
    write_bucket_stats(f, "/buckets/kl_ba", r.buckets, &KlBucket::kl_ba);
    write_bucket_stats(f, "/buckets/js", r.buckets, &KlBucket::js);
    h5::write_small(f, "/buckets/bits_a", h5::Elem::F64, {nb}, bits_a.data());
    h5::write_small(f, "/buckets/bits_b", h5::Elem::F64, {nb}, bits_b.data());
    f.flush();
    f.close();
  } catch (const Error& e) {
    fail(e);
  }
  closed_ = true;
  commit_file(tmp_, path_);  // fsync, rename over path_, fsync the folder; removes tmp_ on failure
}

}  // namespace na
