#include "cost_json.h"

namespace na {

nlohmann::json cost_json(const ModelCost& c) {
  const ParamBreakdown& p = c.params;
  return {{"params",
           {{"total", p.total}, {"embeddings", p.embeddings}, {"attention", p.attention},
            {"feature_map", p.feature_map}, {"feed_forward", p.feed_forward}, {"norms", p.norms},
            {"head", p.head}, {"other", p.other}}},
          {"train_flops_per_token", c.train_flops_per_token},
          {"state_bytes", c.state_bytes},
          {"state_kind", c.state_kind},
          {"state_context", c.state_context},
          {"seq_len", c.seq_len},
          {"matmul_flops_per_token", c.matmul_flops_per_token},
          {"attention_flops_per_token", c.attention_flops_per_token},
          {"approximations", c.approximations}};
}

}  // namespace na
