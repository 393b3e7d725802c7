// Token-by-token comparison of two prediction dumps of the same tokens (`nanoattn kl`):
// KL(P_A || P_B), KL(P_B || P_A) and the Jensen-Shannon divergence of every token's
// distribution, summarised overall and by context position, with each model's bits per token.
// All divergences are in bits (log base 2, like bpc), accumulated in float64. The dumps are
// read in blocks of rows; the only per-token memory is three doubles per token, kept for exact
// percentiles. Layout of the --out file: docs/FORMATS.md, "KL files".
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dump/prediction_dump.h"

namespace na {

struct KlOptions {
  std::string out;           // write the per-token arrays here ("" = none)
  int64_t top = 10;          // report this many tokens with the largest JS divergence
  int64_t context = 32;      // tokens of context shown before each of them
  int64_t block_rows = 0;    // rows read at a time; 0 = the larger chunk of the two dumps
};

// mean, then numpy's default (linear) percentiles: median = p50.
struct DivStats {
  double mean = NAN, median = NAN, p90 = NAN, p99 = NAN, max = NAN;
};
DivStats div_stats(std::vector<double> values);

// One token: both rows renormalised in float64 (log p - logsumexp log p, which changes float32
// rows by ~1e-7 and makes float16 rows proper distributions), then in bits:
// KL(A||B) = sum p_A (log p_A - log p_B), JS = (KL(A||M) + KL(B||M)) / 2 with M = (p_A + p_B) / 2.
struct RowDivergence {
  double kl_ab, kl_ba, js;
};
// `scratch` is reused between calls (2 V doubles).
RowDivergence row_divergence(const float* lp_a, const float* lp_b, int64_t V, std::vector<double>& scratch);

struct KlBucket {
  int64_t first = 0, last = 0;  // context positions first..last (inclusive)
  int64_t tokens = 0;
  DivStats kl_ab, kl_ba, js;
  double bits_a = NAN, bits_b = NAN;  // each model's mean NLL in bits over the bucket
};

struct KlToken {  // one of the most divergent tokens
  int64_t index = 0;
  int32_t position = 0, input = 0, target = 0;
  double kl_ab = 0, kl_ba = 0, js = 0;
  double p_target_a = 0, p_target_b = 0;  // each model's probability of the target
  int32_t argmax_a = 0, argmax_b = 0;     // each model's likeliest next token
  std::vector<int32_t> context;           // the inputs from max(window start, index - context + 1) to index
};

struct KlReport {
  std::string path_a, path_b;
  DumpInfo a, b;                  // their attributes (vocab included)
  int64_t tokens = 0, vocab = 0;
  DivStats kl_ab, kl_ba, js;
  double bits_a = NAN, bits_b = NAN;  // bits per token of each model over these tokens
  std::vector<KlBucket> buckets;      // positions 0, 1, 2-3, 4-7, ... (powers of two)
  // Means by exact context position (index = position): for plots.
  std::vector<int64_t> pos_tokens;
  std::vector<double> pos_kl_ab, pos_kl_ba, pos_js, pos_bits_a, pos_bits_b;
  std::vector<KlToken> top;           // by JS, largest first
};

// Checks that both dumps cover the same tokens in the same order (else an na::Error with the
// first mismatching index, both sizes, the vocabulary differences and how to fix it), then
// computes the report; with opt.out, writes the per-token arrays there (atomically).
KlReport compare_dumps(const std::string& path_a, const std::string& path_b, const KlOptions& opt = {});

// The report as text (a terminal table) and as JSON (`nanoattn kl --json`).
std::string kl_text(const KlReport& r);
nlohmann::json kl_json(const KlReport& r);

}  // namespace na
