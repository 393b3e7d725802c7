// Prediction dumps: float16 rounding, the writer/reader round trip, atomic commit (a killed
// writer leaves nothing under the final name), bounded memory, and a clear error for each kind
// of bad file.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>

#include "dump/half.h"
#include "dump/kl.h"
#include "dump/prediction_dump.h"
#include "dump/top_k.h"
#include "io/h5.h"
#include "nanoattn/error.h"
#include "scratch_dir.h"
#include "error_of.h"

using namespace na;
namespace fs = std::filesystem;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

DumpInfo info_for(int64_t V, DumpDtype dtype = DumpDtype::Float32) {
  DumpInfo info;
  info.model = "softmax";
  info.run_name = "r";
  info.experiment = "e";
  info.config = "run: r\n";
  info.checkpoint = "ck.h5";
  info.checkpoint_step = 7;
  info.split = "val";
  info.mode = "parallel";
  info.seq_len = 8;
  info.unit = "bpc";
  info.corpus = "tiny";
  info.tokenizer = "nanoattn-tokenizer 1\n";
  for (int64_t v = 0; v < V; ++v) info.vocab.push_back(std::string(1, static_cast<char>('a' + v % 26)) + std::to_string(v));
  info.dtype = dtype;
  return info;
}

// Rows [first, first + n) of a synthetic split: windows of 8, log-softmax rows that depend on
// the row index, nll = -lp[target].
struct Rows {
  std::vector<int32_t> in, tg, pos;
  std::vector<float> lp, nll;
  Rows(int64_t first, int64_t n, int64_t V, float salt = 0) {
    for (int64_t r = first; r < first + n; ++r) {
      in.push_back(static_cast<int32_t>(r % V));
      tg.push_back(static_cast<int32_t>((r + 1) % V));
      pos.push_back(static_cast<int32_t>(r % 8));
      std::vector<double> logits(V);
      double mx = -1e30, s = 0;
      for (int64_t v = 0; v < V; ++v) mx = std::max(mx, logits[v] = std::sin(0.37 * r + 1.3 * v + salt) * 3);
      for (int64_t v = 0; v < V; ++v) s += std::exp(logits[v] - mx);
      for (int64_t v = 0; v < V; ++v) lp.push_back(static_cast<float>(logits[v] - mx - std::log(s)));
      nll.push_back(-lp[(r - first) * V + tg.back()]);
    }
  }
  void append_to(PredictionDumpWriter& w) const { w.append(in, tg, pos, lp.data(), nll); }
};

}  // namespace

TEST_CASE("float16: every half survives a round trip, floats round to nearest even") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = half_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      CHECK(std::isnan(half_to_float(float_to_half(f))));
      continue;
    }
    REQUIRE(float_to_half(f) == h);
  }
  CHECK(half_to_float(float_to_half(1.0f)) == 1.0f);
  CHECK(float_to_half(65504.0f) == 0x7bff);
  CHECK(float_to_half(65520.0f) == 0x7c00);  // the tie above the largest half goes to infinity
  CHECK(float_to_half(-1e9f) == 0xfc00);
  CHECK(float_to_half(1.0f + 1.0f / 2048) == 0x3c00);      // tie: to the even neighbour 1.0
  CHECK(float_to_half(1.0f + 3.0f / 2048) == 0x3c02);      // tie: to the even neighbour 1 + 2/1024
  CHECK(float_to_half(std::ldexp(1.0f, -25)) == 0x0000);   // half the smallest subnormal: to 0 (even)
  CHECK(float_to_half(std::ldexp(3.0f, -25)) == 0x0002);   // 1.5 subnormal steps: to 2 (even)
  // Random floats: the result is a nearest half (ties to the even one).
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> mag(-20, 15);  // below 2^15: no overflow to inf
  for (int i = 0; i < 200000; ++i) {
    const float x = std::ldexp(1.0f + (gen() % 4096) / 4096.0f, static_cast<int>(mag(gen))) * (i % 2 ? 1 : -1);
    const uint16_t h = float_to_half(x);
    const double got = half_to_float(h);
    const double up = half_to_float(static_cast<uint16_t>(h + 1)), down = half_to_float(static_cast<uint16_t>(h - 1));
    const double err = std::abs(got - x);
    REQUIRE(err <= std::abs(up - x));
    if ((h & 0x7fff) != 0) REQUIRE(err <= std::abs(down - x));
    if (err == std::abs(up - x) || ((h & 0x7fff) != 0 && err == std::abs(down - x))) REQUIRE((h & 1) == 0);
  }
}

TEST_CASE("a dump reads back what was appended, in blocks, float32 and float16") {
  testing::ScratchDir dir("dump_roundtrip");
  const int64_t V = 11, N = 100;
  for (DumpDtype dtype : {DumpDtype::Float32, DumpDtype::Float16}) {
    const std::string path = dir / (std::string("d_") + dump_dtype_name(dtype) + ".h5");
    {
      PredictionDumpWriter w(path, info_for(V, dtype), {.chunk_rows = 7, .chunks_per_block = 3, .deflate = 4});
      // Appends of uneven sizes, across chunk and block boundaries.
      for (int64_t at = 0, step = 1; at < N; at += step, step = step % 13 + 4) Rows(at, std::min(step, N - at), V).append_to(w);
      CHECK(w.block_rows() == 21);
      CHECK(w.rows() == 84);  // whole blocks; the last partial block is written by commit()
      w.commit();
    }
    const PredictionDump d = PredictionDump::open(path);
    REQUIRE(d.rows() == N);
    REQUIRE(d.vocab_size() == V);
    CHECK(d.chunk_rows() == 7);
    CHECK(d.info().vocab == info_for(V).vocab);
    CHECK(d.info().dtype == dtype);
    CHECK(d.info().checkpoint_step == 7);
    CHECK(d.info().split == "val");
    const Rows want(0, N, V);
    std::vector<int32_t> ids(N);
    d.read_tokens(0, N, ids.data());
    CHECK(ids == want.in);
    d.read_targets(0, N, ids.data());
    CHECK(ids == want.tg);
    d.read_positions(0, N, ids.data());
    CHECK(ids == want.pos);
    std::vector<float> nll(N), lp(N * V);
    d.read_nll(0, N, nll.data());
    CHECK(nll == want.nll);
    d.read_logprobs(0, N, lp.data());
    double sum_nll = 0;
    for (float x : want.nll) sum_nll += x;
    CHECK(d.bits_per_token() == doctest::Approx(sum_nll / N / std::log(2.0)).epsilon(1e-12));
    for (int64_t i = 0; i < N * V; ++i) {
      if (dtype == DumpDtype::Float32) REQUIRE(lp[i] == want.lp[i]);
      else REQUIRE(lp[i] == half_to_float(float_to_half(want.lp[i])));
    }
    // A block in the middle.
    std::vector<float> part(5 * V);
    d.read_logprobs(40, 5, part.data());
    CHECK(part[0] == lp[40 * V]);
  }
}

TEST_CASE("a top-k dump keeps each row's k likeliest, sorted; the rest bucket is recoverable; kl refuses it") {
  testing::ScratchDir dir("dump_topk");
  const int64_t V = 13, N = 100, k = 4;
  const Rows want(0, N, V);
  // Ties go to the lower id.
  {
    const float row[5] = {-2.0f, -1.0f, -1.0f, -3.0f, -1.0f};
    int32_t ids[3];
    float vals[3];
    top_k_rows(row, 1, 5, 3, ids, vals);
    CHECK((ids[0] == 1 && ids[1] == 2 && ids[2] == 4 && vals[2] == -1.0f));
  }
  for (DumpDtype dtype : {DumpDtype::Float32, DumpDtype::Float16}) {
    CAPTURE(dump_dtype_name(dtype));
    const std::string path = dir / (std::string("top_") + dump_dtype_name(dtype) + ".h5");
    DumpInfo info = info_for(V, dtype);
    info.top_k = k;
    {
      PredictionDumpWriter w(path, info, {.chunk_rows = 7, .chunks_per_block = 3, .deflate = 1});
      for (int64_t at = 0, step = 1; at < N; at += step, step = step % 13 + 4) Rows(at, std::min(step, N - at), V).append_to(w);
      w.commit();
    }
    {
      const h5::File f = h5::File::open(path);
      CHECK(f.attr_int64("/", "format_version") == 2);
      CHECK(f.attr_int64("/", "top_k") == k);
      CHECK(!f.has_dataset("/logprobs"));
    }
    const PredictionDump d = PredictionDump::open(path);
    REQUIRE(d.rows() == N);
    CHECK(d.top_k() == k);
    CHECK(d.vocab_size() == V);
    std::vector<int32_t> ids(N * k), want_ids(N * k);
    std::vector<float> lp(N * k), want_lp(N * k), nll(N);
    d.read_top_k(0, N, ids.data(), lp.data());
    top_k_rows(want.lp.data(), N, V, k, want_ids.data(), want_lp.data());
    CHECK(ids == want_ids);
    d.read_nll(0, N, nll.data());
    CHECK(nll == want.nll);  // the full distribution's NLL, whatever k
    for (int64_t r = 0; r < N; ++r) {
      double top = 0, rest = 0;
      for (int64_t j = 0; j < k; ++j) {
        const float w = dtype == DumpDtype::Float32 ? want_lp[r * k + j] : half_to_float(float_to_half(want_lp[r * k + j]));
        REQUIRE(lp[r * k + j] == w);
        if (j) REQUIRE(lp[r * k + j] <= lp[r * k + j - 1]);
        top += std::exp(double(lp[r * k + j]));
      }
      for (int64_t v = 0; v < V; ++v)
        if (std::find(want_ids.begin() + r * k, want_ids.begin() + (r + 1) * k, v) == want_ids.begin() + (r + 1) * k)
          rest += std::exp(double(want.lp[r * V + v]));
      REQUIRE(1 - top == doctest::Approx(rest).epsilon(dtype == DumpDtype::Float32 ? 1e-5 : 3e-3));
    }
    CHECK(has(error_of([&] { d.read_logprobs(0, 1, lp.data()); }),
              cat(dump_dtype_name(dtype), ".h5: a top-k dump (top_k = 4: only each token's 4 likeliest log-probabilities)")));
    CHECK(has(error_of([&] { compare_dumps(path, path); }),
              "but nanoattn kl needs full distributions: write the dump again without --top-k"));
  }
  DumpInfo bad = info_for(V);
  bad.top_k = V;
  CHECK(has(error_of([&] { PredictionDumpWriter w(dir / "bad.h5", bad); }), "--top-k 13 must be in [0, 13)"));
}

TEST_CASE("vocabulary bytes that are not UTF-8 are stored escaped") {
  CHECK(vocab_text("e") == "e");
  CHECK(vocab_text("\n") == "\n");
  CHECK(vocab_text("\xc3\xa9") == "\xc3\xa9");  // é: valid UTF-8, kept
  CHECK(vocab_text("\xc3") == "\\xc3");          // a lone lead byte (a char-level token of é)
  CHECK(vocab_text(std::string(1, '\0')) == "\\x00");
}

TEST_CASE("nothing appears under the final name before commit; an abandoned writer leaves nothing") {
  testing::ScratchDir dir("dump_atomic");
  const std::string path = dir / "preds.h5";
  testing::write_bytes(path, "previous");
  {
    PredictionDumpWriter w(path, info_for(5), {.chunk_rows = 4});
    Rows(0, 10, 5).append_to(w);
    CHECK(fs::exists(w.temp_path()));
    CHECK(testing::read_bytes(path) == "previous");  // the old file is untouched while writing
  }  // destroyed without commit(): an error in the middle of an evaluation
  CHECK(testing::read_bytes(path) == "previous");
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
  {
    PredictionDumpWriter w(path, info_for(5), {.chunk_rows = 4});
    Rows(0, 10, 5).append_to(w);
    w.commit();
    CHECK(!fs::exists(w.temp_path()));
  }
  CHECK(PredictionDump::open(path).rows() == 10);
}

TEST_CASE("a writer killed with SIGKILL leaves no file under the final name") {
  testing::ScratchDir dir("dump_kill");
  const std::string path = dir / "preds.h5";
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    PredictionDumpWriter w(path, info_for(9), {.chunk_rows = 16});
    for (int i = 0; i < 20; ++i) Rows(i * 10, 10, 9).append_to(w);  // several chunks on disk
    ::kill(::getpid(), SIGKILL);
    _exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  CHECK(!fs::exists(path));
  // Only the temporary file remains (the run folder's cleanup removes such leftovers).
  int temps = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) temps += has(e.path().filename().string(), ".preds.h5.tmp-");
  CHECK(temps == 1);
}

TEST_CASE("the writer's memory is one block and its compression buffers, whatever the number of rows") {
  testing::ScratchDir dir("dump_memory");
  const int64_t V = 65;
  PredictionDumpWriter w(dir / "big.h5", info_for(V), {.chunk_rows = 512, .deflate = 1});
  const Rows batch(0, 4096, V);  // one evaluation batch (16 windows of 256)
  for (int i = 0; i < 12; ++i) batch.append_to(w);  // 49,152 rows, 12.8 MB of log-probabilities
  w.commit();
  CHECK(w.rows() == 12 * 4096);
  CHECK(w.block_bytes() == 4 * 512 * (65 * 4 + 16));
  MESSAGE("peak buffered: ", w.peak_buffered_bytes(), " bytes, block ", w.block_bytes());
  CHECK(w.peak_buffered_bytes() > 2 * w.block_bytes());  // the accounting sees the compression buffers
  CHECK(w.peak_buffered_bytes() <= 3.01 * w.block_bytes());
  // The default block: four chunks of about 256 KiB of log-probabilities.
  PredictionDumpWriter d(dir / "default.h5", info_for(V));
  CHECK(d.chunk_rows() == (1 << 18) / (65 * 4));
  CHECK(d.block_bytes() <= (size_t{1} << 20) + 16 * d.block_rows());
}

#if !defined(__SANITIZE_ADDRESS__)  // ASan's quarantine keeps freed memory: RSS says nothing there
namespace {
// Peak RSS (KiB) of a child that writes a dump of `rows` rows (V = 65), then reads it in blocks.
long child_peak_kib(const std::string& path, int64_t rows) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(fds[0]);
    long kib = -1;
    try {
      {
        PredictionDumpWriter w(path, info_for(65), {.deflate = 1});
        const Rows batch(0, 4096, 65);
        for (int64_t at = 0; at < rows; at += 4096) batch.append_to(w);
        w.commit();
      }
      const PredictionDump d = PredictionDump::open(path);
      std::vector<float> block(static_cast<size_t>(d.chunk_rows() * 65));
      for (int64_t at = 0; at < d.rows(); at += d.chunk_rows())
        d.read_logprobs(at, std::min(d.chunk_rows(), d.rows() - at), block.data());
      struct rusage ru;
      ::getrusage(RUSAGE_SELF, &ru);
      kib = ru.ru_maxrss;
    } catch (...) {
    }
    (void)!::write(fds[1], &kib, sizeof kib);
    _exit(0);
  }
  ::close(fds[1]);
  long kib = -1;
  (void)!::read(fds[0], &kib, sizeof kib);
  ::close(fds[0]);
  ::waitpid(child, nullptr, 0);
  return kib;
}
}  // namespace

TEST_CASE("writing and reading a dump 16x longer takes no more memory (peak RSS)") {
  testing::ScratchDir dir("dump_rss");
  const long small = child_peak_kib(dir / "small.h5", 4096 * 2);    // 2.1 MB of log-probabilities
  const long large = child_peak_kib(dir / "large.h5", 4096 * 32);   // 34 MB
  MESSAGE("peak RSS: ", small, " KiB for 8192 rows, ", large, " KiB for 131072 rows");
  REQUIRE(small > 0);
  REQUIRE(large > 0);
  CHECK(large - small < 8 * 1024);  // holding the rows would add 32 MB
}
#endif

TEST_CASE("opening a bad dump: each problem has its own message naming the file") {
  testing::ScratchDir dir("dump_errors");
  const std::string good = dir / "good.h5";
  {
    PredictionDumpWriter w(good, info_for(6), {.chunk_rows = 8});
    Rows(0, 30, 6).append_to(w);
    w.commit();
  }
  CHECK(has(error_of([&] { PredictionDump::open(dir / "absent.h5"); }), "absent.h5: no such file"));
  testing::write_bytes(dir / "text.h5", "not hdf5 at all");
  CHECK(has(error_of([&] { PredictionDump::open(dir / "text.h5"); }), "text.h5: not an HDF5 file"));
  const std::string bytes = testing::read_bytes(good);
  testing::write_bytes(dir / "cut.h5", bytes.substr(0, bytes.size() / 2));
  CHECK(has(error_of([&] { PredictionDump::open(dir / "cut.h5"); }), "cut.h5: an HDF5 file that HDF5 cannot open: it is truncated"));
  for (const char* ds : {"/nll", "/logprobs", "/vocab"}) {
    const std::string p = dir / "missing.h5";
    fs::copy_file(good, p, fs::copy_options::overwrite_existing);
    {
      h5::File f = h5::File::open(p, h5::File::Mode::ReadWrite);
      f.remove(ds);
      f.close();
    }
    CHECK(has(error_of([&] { PredictionDump::open(p); }),
              cat("missing.h5: dataset ", ds, " is missing: the dump is incomplete or damaged")));
  }
  {
    const std::string p = dir / "plain.h5";
    h5::File f = h5::File::create(p);
    f.set_attr_string("/", "format", "nanoattn-checkpoint");
    f.close();
    CHECK(has(error_of([&] { PredictionDump::open(p); }), "plain.h5: a nanoattn checkpoint, not a prediction dump"));
  }
  {
    const std::string p = dir / "v2.h5";
    fs::copy_file(good, p);
    h5::File f = h5::File::open(p, h5::File::Mode::ReadWrite);
    f.set_attr_int64("/", "format_version", 3);
    f.close();
    CHECK(has(error_of([&] { PredictionDump::open(p); }),
              "v2.h5: written by dump format version 3, this nanoattn reads version 1 (full distributions) and 2 (top-k)"));
    h5::File g = h5::File::open(p, h5::File::Mode::ReadWrite);
    g.set_attr_int64("/", "format_version", 2);  // the top-k layout, without its attribute
    g.close();
    CHECK(has(error_of([&] { PredictionDump::open(p); }), "v2.h5: attribute 'top_k' of / is missing"));
  }
  CHECK(has(error_of([&] { PredictionDumpWriter w(dir / "no/such/dir/p.h5", info_for(3)); }),
            "no/such/dir/p.h5: cannot write the dump"));
  CHECK(has(error_of([&] { parse_dump_dtype("float64", "--dump-dtype"); }), "use float32 or float16"));
}
