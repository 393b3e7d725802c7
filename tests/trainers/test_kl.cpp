// `nanoattn kl`'s computation: per-token divergences against closed forms, numpy-compatible
// percentiles, the report's summaries by position, the --out file, and the alignment errors.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include "dump/kl.h"
#include "io/h5.h"
#include "nanoattn/error.h"
#include "scratch_dir.h"
#include "error_of.h"

using namespace na;
namespace fs = std::filesystem;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

DumpInfo info_for(const std::vector<std::string>& vocab, const std::string& split = "val", int64_t T = 4) {
  DumpInfo info;
  info.model = "m";
  info.run_name = "r";
  info.split = split;
  info.mode = "parallel";
  info.seq_len = T;
  info.unit = "bpc";
  info.tokenizer = "t";
  info.vocab = vocab;
  return info;
}

// A dump of n tokens, windows of T, whose row r is `row(r)` (log-probabilities).
void write_dump(const std::string& path, int64_t n, int64_t T, const std::vector<std::string>& vocab,
                const std::function<std::vector<float>(int64_t)>& row, int32_t token_shift = 0) {
  const int64_t V = static_cast<int64_t>(vocab.size());
  PredictionDumpWriter w(path, info_for(vocab, "val", T), {.chunk_rows = 5});
  for (int64_t r = 0; r < n; ++r) {
    const std::vector<float> lp = row(r);
    const int32_t in = static_cast<int32_t>((r + token_shift) % V), tg = static_cast<int32_t>((r + 1) % V),
                  pos = static_cast<int32_t>(r % T);
    const float nll = -lp[tg];
    w.append({&in, 1}, {&tg, 1}, {&pos, 1}, lp.data(), {&nll, 1});
  }
  w.commit();
}

std::vector<float> log_of(std::vector<double> p) {
  std::vector<float> out;
  for (double x : p) out.push_back(static_cast<float>(std::log(x)));
  return out;
}

}  // namespace

TEST_CASE("row divergence: closed forms, in bits") {
  std::vector<double> scratch;
  const std::vector<float> a = log_of({0.5, 0.5}), b = log_of({0.9, 0.1});
  const RowDivergence d = row_divergence(a.data(), b.data(), 2, scratch);
  const double kl_ab = (0.5 * std::log(0.5 / 0.9) + 0.5 * std::log(0.5 / 0.1)) / std::log(2.0);
  const double kl_ba = (0.9 * std::log(0.9 / 0.5) + 0.1 * std::log(0.1 / 0.5)) / std::log(2.0);
  const double m0 = 0.7, m1 = 0.3;
  const double js = 0.5 * (0.5 * std::log(0.5 / m0) + 0.5 * std::log(0.5 / m1) + 0.9 * std::log(0.9 / m0) +
                           0.1 * std::log(0.1 / m1)) / std::log(2.0);
  CHECK(d.kl_ab == doctest::Approx(kl_ab).epsilon(1e-6));
  CHECK(d.kl_ba == doctest::Approx(kl_ba).epsilon(1e-6));
  CHECK(d.js == doctest::Approx(js).epsilon(1e-6));
  // Same row: all zero. Disjoint supports: JS is exactly one bit, KL infinite.
  const RowDivergence same = row_divergence(a.data(), a.data(), 2, scratch);
  CHECK(same.kl_ab == doctest::Approx(0).epsilon(1e-12));
  CHECK(same.js == doctest::Approx(0).epsilon(1e-12));
  const std::vector<float> x = {0.0f, -INFINITY}, y = {-INFINITY, 0.0f};
  const RowDivergence disjoint = row_divergence(x.data(), y.data(), 2, scratch);
  CHECK(disjoint.js == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(std::isinf(disjoint.kl_ab));
  // Rows are renormalised: a constant added to a row changes nothing.
  const std::vector<float> a_shift = {a[0] + 0.01f, a[1] + 0.01f};
  const RowDivergence shifted = row_divergence(a_shift.data(), b.data(), 2, scratch);
  CHECK(shifted.kl_ab == doctest::Approx(d.kl_ab).epsilon(1e-6));
}

TEST_CASE("statistics are numpy's: mean and linear percentiles") {
  const DivStats s = div_stats({10, 1, 9, 2, 8, 3, 7, 4, 6, 5});
  CHECK(s.mean == doctest::Approx(5.5));
  CHECK(s.median == doctest::Approx(5.5));
  CHECK(s.p90 == doctest::Approx(9.1));   // numpy.percentile(range(1, 11), 90)
  CHECK(s.p99 == doctest::Approx(9.91));
  CHECK(s.max == 10);
  CHECK(std::isnan(div_stats({}).mean));
}

TEST_CASE("compare_dumps: totals, buckets by position, the most divergent tokens, the --out file") {
  testing::ScratchDir dir("kl_report");
  const std::vector<std::string> vocab = {"a", "b", "\n"};
  const int64_t N = 37, T = 8;
  // A is uniform; B puts more mass on token 0 the later the position: KL grows with position.
  write_dump(dir / "a.h5", N, T, vocab, [](int64_t) { return log_of({1 / 3.0, 1 / 3.0, 1 / 3.0}); });
  write_dump(dir / "b.h5", N, T, vocab, [&](int64_t r) {
    const double p0 = 0.4 + 0.05 * static_cast<double>(r % T);
    return log_of({p0, (1 - p0) / 2, (1 - p0) / 2});
  });
  KlOptions opt;
  opt.out = dir / "kl.h5";
  opt.top = 3;
  opt.block_rows = 6;  // blocks that do not line up with the dumps' chunks of 5
  const KlReport r = compare_dumps(dir / "a.h5", dir / "b.h5", opt);
  CHECK(r.tokens == N);
  CHECK(r.vocab == 3);
  std::vector<double> scratch;
  double sum = 0;
  std::vector<double> per_pos(T, 0);
  for (int64_t k = 0; k < N; ++k) {
    const double p0 = 0.4 + 0.05 * static_cast<double>(k % T);
    const std::vector<float> a = log_of({1 / 3.0, 1 / 3.0, 1 / 3.0}), b = log_of({p0, (1 - p0) / 2, (1 - p0) / 2});
    const double kl = row_divergence(a.data(), b.data(), 3, scratch).kl_ab;
    sum += kl;
    per_pos[k % T] += kl;
  }
  CHECK(r.kl_ab.mean == doctest::Approx(sum / N).epsilon(1e-12));
  CHECK(r.bits_a == doctest::Approx(std::log2(3.0)).epsilon(1e-6));
  REQUIRE(r.pos_tokens.size() == T);
  CHECK(r.pos_tokens[0] == 5);  // positions 0..4 appear 5 times in 37 tokens, 5..7 four times
  CHECK(r.pos_tokens[7] == 4);
  CHECK(r.pos_kl_ab[7] == doctest::Approx(per_pos[7] / 4).epsilon(1e-12));
  // Buckets: 0 | 1 | 2-3 | 4-7.
  REQUIRE(r.buckets.size() == 4);
  CHECK(r.buckets[2].first == 2);
  CHECK(r.buckets[2].last == 3);
  CHECK(r.buckets[3].tokens == 5 + 4 * 3);
  CHECK(r.buckets[3].kl_ab.max == doctest::Approx(per_pos[7] / 4).epsilon(1e-9));
  // The largest divergences are at position 7, the first of them first.
  REQUIRE(r.top.size() == 3);
  CHECK(r.top[0].position == 7);
  CHECK(r.top[0].index == 7);
  CHECK(r.top[1].index == 15);
  CHECK(r.top[0].context.size() == 8);  // the whole window up to the token
  CHECK(r.top[0].p_target_b == doctest::Approx((1 - 0.75) / 2).epsilon(1e-6));
  CHECK(has(kl_text(r), "KL(A||B)"));
  CHECK(kl_json(r)["buckets"].size() == 4);
  // The --out file holds the per-token values.
  h5::File f = h5::File::open(opt.out);
  CHECK(f.attr_string("/", "format") == "nanoattn-kl");
  CHECK(f.attr_double("/", "kl_ab_mean") == r.kl_ab.mean);
  CHECK(f.dataset_shape("/by_position/kl_ab") == Shape{T});
  CHECK(f.dataset_shape("/buckets/kl_ab") == Shape{4, 5});
}

TEST_CASE("compare_dumps refuses dumps of different tokens, with the first mismatch") {
  testing::ScratchDir dir("kl_errors");
  const std::vector<std::string> vocab = {"x", "y", "z"};
  auto flat = [](int64_t) { return log_of({0.2, 0.3, 0.5}); };
  write_dump(dir / "a.h5", 20, 4, vocab, flat);
  write_dump(dir / "shorter.h5", 12, 4, vocab, flat);
  write_dump(dir / "windows.h5", 20, 5, vocab, flat);
  write_dump(dir / "tokens.h5", 20, 4, vocab, flat, 1);
  write_dump(dir / "vocab.h5", 20, 4, {"x", "y", "w"}, flat);
  write_dump(dir / "bigger.h5", 20, 4, {"x", "y", "z", "w"}, [](int64_t) { return log_of({0.1, 0.2, 0.3, 0.4}); });
  CHECK(has(error_of([&] { compare_dumps(dir / "a.h5", dir / "shorter.h5"); }),
            "not dumps of the same tokens: 20 vs 12 tokens (split val vs val, windows of 4 vs 4); their first 12 "
            "input tokens agree"));
  CHECK(has(error_of([&] { compare_dumps(dir / "a.h5", dir / "windows.h5"); }),
            "they differ at token index 4 of 20: context position 0 vs 4 (windows of 4 vs 5)"));
  CHECK(has(error_of([&] { compare_dumps(dir / "a.h5", dir / "tokens.h5"); }),
            "they differ at token index 0 of 20: input token 'x' vs 'y'"));
  CHECK(has(error_of([&] { compare_dumps(dir / "a.h5", dir / "vocab.h5"); }),
            "different vocabularies: 3 vs 3 tokens, the first differs at id 2: 'z' vs 'w'"));
  const std::string bigger = error_of([&] { compare_dumps(dir / "a.h5", dir / "bigger.h5"); });
  CHECK(has(bigger, "different vocabularies: 3 vs 4 tokens, one vocabulary extends the other"));
  CHECK(has(bigger, "bigger.h5: 'w'"));
  // A failed comparison leaves no --out file.
  KlOptions opt;
  opt.out = dir / "kl.h5";
  CHECK(has(error_of([&] { compare_dumps(dir / "a.h5", dir / "tokens.h5", opt); }), "differ at token index 0"));
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 6);
}
