// What a model costs: parameters by part, training FLOPs per token, and the memory inference
// keeps per sequence. `nanoattn match` balances these between models; studies write them to
// each run's cost.json (trainers/study/cost_json.h).
//
// Training FLOPs per token (conventions and the attention formulas: attention_cost.h):
//   6 x (the weights a token's vector is multiplied by, once per application: attention
//        projections, feed-forward, the head's (V, C) matrix tied or not, a factorised
//        embedding's projection, causal-conv kernels; embedding lookups, norms and biases are
//        not products)
//   + the attention term of every layer application at the training length T.
//
// Inference state at context T for one sequence: a model with an RNN form
// (Model::recurrent_unsupported() empty) reports its measured state (begin_recurrent(1)->
// bytes(): fast weights S, z of linear attention, ...), the same at any T; any other model a
// float32 KV cache of 2 x layers x T x d_model x 4 bytes (layers = attention applications).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model.h"

namespace na {

// Parameter counts by part; total == Model::params().count() (shared and tied weights once).
// attention: the q/k/v/output projections; feature_map: the attention plugins' other
// parameters (delta's beta, linformer's E and F, fastformer's pooling weights); the other
// parts are param_report.h's groups.
struct ParamBreakdown {
  int64_t total = 0, embeddings = 0, attention = 0, feature_map = 0, feed_forward = 0, norms = 0, head = 0,
          other = 0;
};

struct ModelCost {
  ParamBreakdown params;
  int64_t seq_len = 0;                    // the training length T of the FLOPs
  double matmul_flops_per_token = 0;      // 6 x the matrix weights (per application)
  double attention_flops_per_token = 0;   // the attention terms of every layer
  double train_flops_per_token = 0;       // their sum
  int64_t state_context = 0;              // T of state_bytes
  int64_t state_bytes = 0;                // for batch 1
  std::string state_kind;                 // "kv_cache" | "fast_weights"
  std::vector<std::string> approximations;  // where a formula is only a bound (unknown plugins, ...)
};

ParamBreakdown param_counts(const ParamStore& store);

// seq_len: training T (FLOPs); context: T of the KV cache (an RNN state does not depend on it).
ModelCost model_cost(const Model& model, int64_t seq_len, int64_t context);

// "KV cache" | "fast-weight state", for tables.
std::string state_label(const std::string& state_kind);

}  // namespace na
