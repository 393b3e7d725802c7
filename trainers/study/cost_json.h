// A model's cost (models/cost_model.h) as JSON: what a study writes to each run's cost.json and
// `nanoattn match --json` prints per model. Keys (a report script reads them by name):
//   params: {total, embeddings, attention, feature_map, feed_forward, norms, head, other}
//   train_flops_per_token, state_bytes, state_kind ("kv_cache" | "fast_weights"), state_context
// plus the details: seq_len (T of the FLOPs), matmul_flops_per_token,
// attention_flops_per_token, approximations (where a formula is only a bound).
#pragma once
#include <nlohmann/json.hpp>

#include "cost_model.h"

namespace na {

nlohmann::json cost_json(const ModelCost& cost);

}  // namespace na
