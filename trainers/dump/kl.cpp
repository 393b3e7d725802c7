#include "dump/kl.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <queue>

#include "dump/kl_file.h"
#include "nanoattn/error.h"
#include "nanoattn/stop.h"

namespace na {
namespace {

const double kLn2 = std::log(2.0);
constexpr const char* kFix =
    "compare dumps of the same split and corpus made with the same --seq-len (nanoattn eval <checkpoint> --split S "
    "--seq-len T --dump <file>)";

// Bucket of a context position: 0 | 1 | 2-3 | 4-7 | ...
size_t bucket_of(int32_t pos) {
  size_t b = 0;
  for (uint32_t p = static_cast<uint32_t>(std::max(pos, 0)); p > 0; p >>= 1) ++b;
  return b;
}

double percentile(const std::vector<double>& sorted, double q) {
  const double at = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(at);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - static_cast<double>(lo));
}

// A token for messages: 'e', with newlines and tabs visible.
std::string shown(const std::vector<std::string>& vocab, int32_t id) {
  if (id < 0 || id >= static_cast<int32_t>(vocab.size())) return cat("<id ", id, ">");
  std::string s;
  for (char c : vocab[id]) s += c == '\n' ? std::string("\\n") : c == '\t' ? std::string("\\t") : std::string(1, c);
  return "'" + s + "'";
}

std::string both(const PredictionDump& A, const PredictionDump& B) { return A.path() + " and " + B.path(); }

void check_vocab(const PredictionDump& A, const PredictionDump& B) {
  const auto& va = A.info().vocab;
  const auto& vb = B.info().vocab;
  if (va == vb && A.info().tokenizer == B.info().tokenizer) return;
  // Tokens only one side has (the first 8), and the first id where they differ.
  auto only = [](const std::vector<std::string>& x, const std::vector<std::string>& y) {
    std::string list;
    int64_t n = 0;
    for (size_t i = 0; i < x.size(); ++i)
      if (std::find(y.begin(), y.end(), x[i]) == y.end() && ++n <= 8) list += cat(n > 1 ? ", " : "", shown(x, int32_t(i)));
    return n == 0 ? std::string("none") : n > 8 ? cat(list, " and ", n - 8, " more") : list;
  };
  std::string first;
  for (size_t i = 0; i < std::min(va.size(), vb.size()); ++i)
    if (va[i] != vb[i]) {
      first = cat("the first differs at id ", i, ": ", shown(va, int32_t(i)), " vs ", shown(vb, int32_t(i)));
      break;
    }
  if (first.empty()) first = "one vocabulary extends the other";
  if (va == vb) first = "the same token texts, but another tokenizer (kind or bytes)";
  throw Error(both(A, B), cat("different vocabularies: ", va.size(), " vs ", vb.size(), " tokens, ", first,
                              "; only in ", A.path(), ": ", only(va, vb), "; only in ", B.path(), ": ", only(vb, va),
                              ": compare models trained on the same corpus with the same tokenizer"));
}

// Dumps of different lengths: say where (if anywhere) the common part already differs.
[[noreturn]] void length_mismatch(const PredictionDump& A, const PredictionDump& B, int64_t block) {
  const int64_t n = std::min(A.rows(), B.rows());
  std::vector<int32_t> ta(block), tb(block);
  int64_t first = -1;
  for (int64_t at = 0; at < n && first < 0; at += block) {
    const int64_t c = std::min(block, n - at);
    A.read_tokens(at, c, ta.data());
    B.read_tokens(at, c, tb.data());
    for (int64_t i = 0; i < c; ++i)
      if (ta[i] != tb[i]) {
        first = at + i;
        break;
      }
  }
  const DumpInfo &a = A.info(), &b = B.info();
  throw Error(both(A, B), cat("not dumps of the same tokens: ", A.rows(), " vs ", B.rows(), " tokens (split ", a.split,
                              " vs ", b.split, ", windows of ", a.seq_len, " vs ", b.seq_len, "); ",
                              first >= 0 ? cat("the first mismatching index is ", first)
                                         : cat("their first ", n, " input tokens agree"),
                              ": ", kFix));
}

struct Block {  // one block of rows of one dump
  std::vector<int32_t> tokens, targets, positions;
  std::vector<float> nll, lp;
  void read(const PredictionDump& d, int64_t at, int64_t n) {
    tokens.resize(n), targets.resize(n), positions.resize(n), nll.resize(n);
    lp.resize(static_cast<size_t>(n * d.vocab_size()));
    d.read_tokens(at, n, tokens.data());
    d.read_targets(at, n, targets.data());
    d.read_positions(at, n, positions.data());
    d.read_nll(at, n, nll.data());
    d.read_logprobs(at, n, lp.data());
  }
};

// A damaged or foreign dump must not give a wrong mean: every id inside the vocabulary, every
// log-probability and NLL finite.
void check_values(const PredictionDump& d, const Block& x, int64_t at) {
  const int64_t V = d.vocab_size();
  const char* damaged = ": the dump is damaged: write it again with `nanoattn eval <checkpoint> --dump <file>`";
  for (size_t i = 0; i < x.targets.size(); ++i) {
    const int64_t k = at + int64_t(i);
    NA_CHECK(x.tokens[i] >= 0 && x.tokens[i] < V, d.path(), "dataset /tokens holds ", x.tokens[i], " at token index ",
             k, ", outside the vocabulary of ", V, damaged);
    NA_CHECK(x.targets[i] >= 0 && x.targets[i] < V, d.path(), "dataset /targets holds ", x.targets[i],
             " at token index ", k, ", outside the vocabulary of ", V, damaged);
    NA_CHECK(std::isfinite(x.nll[i]), d.path(), "dataset /nll holds ", x.nll[i], " at token index ", k, damaged);
    const float* row = &x.lp[static_cast<size_t>(i) * V];
    for (int64_t v = 0; v < V; ++v)
      NA_CHECK(std::isfinite(row[v]), d.path(), "dataset /logprobs holds ", row[v], " at token index ", k,
               " (symbol ", v, ")", damaged);
  }
}

void check_rows(const PredictionDump& A, const PredictionDump& B, const Block& a, const Block& b, int64_t at) {
  check_values(A, a, at);
  check_values(B, b, at);
  const auto& vocab = A.info().vocab;
  for (size_t i = 0; i < a.tokens.size(); ++i) {
    // Positions index the by-position arrays: a damaged file must not make them huge.
    const int32_t p = a.positions[i];
    NA_CHECK(p >= 0 && p < std::max<int64_t>(A.info().seq_len, 1), A.path(), "dataset /positions holds ", p,
             " at index ", at + int64_t(i), ", outside the windows of ", A.info().seq_len,
             ": the dump is damaged: write it again with `nanoattn eval <checkpoint> --dump <file>`");
    std::string what;
    if (a.tokens[i] != b.tokens[i])
      what = cat("input token ", shown(vocab, a.tokens[i]), " vs ", shown(vocab, b.tokens[i]));
    else if (a.targets[i] != b.targets[i])
      what = cat("target ", shown(vocab, a.targets[i]), " vs ", shown(vocab, b.targets[i]));
    else if (a.positions[i] != b.positions[i])
      what = cat("context position ", a.positions[i], " vs ", b.positions[i], " (windows of ", A.info().seq_len, " vs ",
                 B.info().seq_len, ")");
    else
      continue;
    throw Error(both(A, B), cat("not dumps of the same tokens: they differ at token index ", at + int64_t(i), " of ",
                                A.rows(), ": ", what, ": ", kFix));
  }
}

int32_t argmax(const float* row, int64_t V) { return static_cast<int32_t>(std::max_element(row, row + V) - row); }

}  // namespace

DivStats div_stats(std::vector<double> v) {
  DivStats s;
  if (v.empty()) return s;
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  std::sort(v.begin(), v.end());
  s.median = percentile(v, 50);
  s.p90 = percentile(v, 90);
  s.p99 = percentile(v, 99);
  s.max = v.back();
  return s;
}

RowDivergence row_divergence(const float* lp_a, const float* lp_b, int64_t V, std::vector<double>& scratch) {
  scratch.resize(static_cast<size_t>(2 * V));
  double* pa = scratch.data();
  double* pb = pa + V;
  double sa = 0, sb = 0;
  for (int64_t i = 0; i < V; ++i) {
    sa += pa[i] = std::exp(static_cast<double>(lp_a[i]));
    sb += pb[i] = std::exp(static_cast<double>(lp_b[i]));
  }
  const double la = std::log(sa), lb = std::log(sb);
  double kl_ab = 0, kl_ba = 0, js = 0;
  for (int64_t i = 0; i < V; ++i) {
    const double p = pa[i] / sa, q = pb[i] / sb;
    const double a = lp_a[i] - la, b = lp_b[i] - lb;  // renormalised log-probabilities
    if (p > 0) kl_ab += p * (a - b);
    if (q > 0) kl_ba += q * (b - a);
    if (p > 0 || q > 0) {
      const double lm = std::log(0.5 * (p + q));
      if (p > 0) js += 0.5 * p * (a - lm);
      if (q > 0) js += 0.5 * q * (b - lm);
    }
  }
  return {kl_ab / kLn2, kl_ba / kLn2, js / kLn2};
}

KlReport compare_dumps(const std::string& path_a, const std::string& path_b, const KlOptions& opt) {
  const PredictionDump A = PredictionDump::open(path_a);
  const PredictionDump B = PredictionDump::open(path_b);
  A.require_full("nanoattn kl");  // KL and JS sum over the whole vocabulary
  B.require_full("nanoattn kl");
  check_vocab(A, B);
  const int64_t block =
      opt.block_rows > 0 ? opt.block_rows : std::max<int64_t>({A.chunk_rows(), B.chunk_rows(), int64_t{256}});
  if (A.rows() != B.rows()) length_mismatch(A, B, block);
  const int64_t N = A.rows(), V = A.vocab_size();

  KlReport r;
  r.path_a = path_a;
  r.path_b = path_b;
  r.a = A.info();
  r.b = B.info();
  r.tokens = N;
  r.vocab = V;
  std::unique_ptr<KlFileWriter> out;
  if (!opt.out.empty()) out = std::make_unique<KlFileWriter>(opt.out, block);

  // Every token's divergences are kept (24 bytes a token) for exact percentiles.
  std::vector<double> kl_ab(N), kl_ba(N), js(N);
  std::vector<int32_t> pos(N);
  std::vector<double> nll_a_pos, nll_b_pos;  // sums by position, nats
  double nll_a = 0, nll_b = 0;
  // Min-heap of the largest JS so far: (js, index).
  using Entry = std::pair<double, int64_t>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> top;
  Block a, b;
  std::vector<double> scratch;
  for (int64_t at = 0; at < N; at += block) {
    check_stop("comparing the dumps");
    const int64_t n = std::min(block, N - at);
    a.read(A, at, n);
    b.read(B, at, n);
    check_rows(A, B, a, b, at);
    for (int64_t i = 0; i < n; ++i) {
      const RowDivergence d = row_divergence(&a.lp[i * V], &b.lp[i * V], V, scratch);
      const int64_t k = at + i;
      kl_ab[k] = d.kl_ab;
      kl_ba[k] = d.kl_ba;
      js[k] = d.js;
      const int32_t p = a.positions[i];
      pos[k] = p;
      nll_a += a.nll[i];
      nll_b += b.nll[i];
      if (p >= 0) {
        if (static_cast<size_t>(p) >= r.pos_tokens.size()) {
          const size_t sz = static_cast<size_t>(p) + 1;
          for (auto* v : {&r.pos_kl_ab, &r.pos_kl_ba, &r.pos_js, &nll_a_pos, &nll_b_pos}) v->resize(sz, 0.0);
          r.pos_tokens.resize(sz, 0);
        }
        r.pos_tokens[p] += 1;
        r.pos_kl_ab[p] += d.kl_ab;
        r.pos_kl_ba[p] += d.kl_ba;
        r.pos_js[p] += d.js;
        nll_a_pos[p] += a.nll[i];
        nll_b_pos[p] += b.nll[i];
      }
      if (opt.top > 0 && (static_cast<int64_t>(top.size()) < opt.top || d.js > top.top().first)) {
        top.emplace(d.js, k);
        if (static_cast<int64_t>(top.size()) > opt.top) top.pop();
      }
    }
    if (out) out->append(&kl_ab[at], &kl_ba[at], &js[at], &pos[at], n);
  }

  r.bits_a = N ? nll_a / N / kLn2 : NAN;
  r.bits_b = N ? nll_b / N / kLn2 : NAN;
  r.kl_ab = div_stats(kl_ab);
  r.kl_ba = div_stats(kl_ba);
  r.js = div_stats(js);
  r.pos_bits_a.resize(r.pos_tokens.size());
  r.pos_bits_b.resize(r.pos_tokens.size());
  for (size_t p = 0; p < r.pos_tokens.size(); ++p) {
    const double c = static_cast<double>(r.pos_tokens[p]);
    for (auto* v : {&r.pos_kl_ab, &r.pos_kl_ba, &r.pos_js}) (*v)[p] = c ? (*v)[p] / c : NAN;
    r.pos_bits_a[p] = c ? nll_a_pos[p] / c / kLn2 : NAN;
    r.pos_bits_b[p] = c ? nll_b_pos[p] / c / kLn2 : NAN;
  }

  // Buckets of positions: gather each bucket's values, then the same statistics.
  const size_t nb = r.pos_tokens.empty() ? 0 : bucket_of(static_cast<int32_t>(r.pos_tokens.size() - 1)) + 1;
  for (size_t bi = 0; bi < nb; ++bi) {
    KlBucket bk;
    bk.first = bi == 0 ? 0 : int64_t{1} << (bi - 1);
    bk.last = std::min<int64_t>(bi == 0 ? 0 : (int64_t{1} << bi) - 1, static_cast<int64_t>(r.pos_tokens.size()) - 1);
    double na = 0, nbits = 0;
    for (int64_t p = bk.first; p <= bk.last; ++p) {
      bk.tokens += r.pos_tokens[p];
      na += nll_a_pos[p];
      nbits += nll_b_pos[p];
    }
    std::vector<double> ab, ba, j;
    ab.reserve(bk.tokens), ba.reserve(bk.tokens), j.reserve(bk.tokens);
    for (int64_t k = 0; k < N; ++k)
      if (pos[k] >= bk.first && pos[k] <= bk.last) {
        ab.push_back(kl_ab[k]);
        ba.push_back(kl_ba[k]);
        j.push_back(js[k]);
      }
    bk.kl_ab = div_stats(std::move(ab));
    bk.kl_ba = div_stats(std::move(ba));
    bk.js = div_stats(std::move(j));
    bk.bits_a = bk.tokens ? na / bk.tokens / kLn2 : NAN;
    bk.bits_b = bk.tokens ? nbits / bk.tokens / kLn2 : NAN;
    r.buckets.push_back(std::move(bk));
  }

  // The most divergent tokens, largest first, with their context read back from dump A.
  std::vector<Entry> best;
  for (; !top.empty(); top.pop()) best.push_back(top.top());
  std::sort(best.begin(), best.end(), [](const Entry& x, const Entry& y) {
    return x.first != y.first ? x.first > y.first : x.second < y.second;
  });
  std::vector<float> row_a(V), row_b(V);
  for (const auto& [j, k] : best) {
    KlToken t;
    t.index = k;
    t.position = pos[k];
    t.kl_ab = kl_ab[k];
    t.kl_ba = kl_ba[k];
    t.js = j;
    A.read_targets(k, 1, &t.target);
    const int64_t back = std::min<int64_t>(std::max<int32_t>(t.position, 0), std::max<int64_t>(opt.context, 1) - 1);
    t.context.resize(static_cast<size_t>(back + 1));
    A.read_tokens(k - back, back + 1, t.context.data());
    t.input = t.context.back();
    A.read_logprobs(k, 1, row_a.data());
    B.read_logprobs(k, 1, row_b.data());
    t.p_target_a = std::exp(static_cast<double>(row_a[t.target]));
    t.p_target_b = std::exp(static_cast<double>(row_b[t.target]));
    t.argmax_a = argmax(row_a.data(), V);
    t.argmax_b = argmax(row_b.data(), V);
    r.top.push_back(std::move(t));
  }
  if (out) out->commit(r);
  return r;
}

}  // namespace na
