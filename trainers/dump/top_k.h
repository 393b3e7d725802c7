// The k likeliest tokens of each row of log-probabilities: what a top-k prediction dump stores
// and what a live top-k teacher hands to distill_loss, computed by this one function so both
// give the same ids and values.
#pragma once
#include <cstdint>

namespace na {

// rows x V log-probabilities -> ids (rows, k) and their log-probabilities (rows, k), by
// decreasing log-probability, ties broken by the lower id. 1 <= k <= V.
void top_k_rows(const float* logprobs, int64_t rows, int64_t V, int64_t k, int32_t* ids, float* values);

}  // namespace na
