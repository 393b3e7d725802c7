#include "cost_model.h"

#include "attention_cost.h"
#include "param_report.h"

namespace na {

ParamBreakdown param_counts(const ParamStore& store) {
  ParamBreakdown b;
  for (const ParamGroup& g : param_breakdown(store)) {  // param_report's groups, as `nanoattn params` prints
    b.total += g.scalars;
    if (g.group == "embeddings") b.embeddings = g.scalars;
    else if (g.group == "attention") b.attention = g.scalars;
    else if (g.group == "feed-forward") b.feed_forward = g.scalars;
    else if (g.group == "norms") b.norms = g.scalars;
    else if (g.group == "head") b.head = g.scalars;
    else b.other += g.scalars;
  }
  // Of the attention group, what is not a projection belongs to the plugins' feature maps.
  for (const Parameter* p : store.all())
    if (store.group(*p) == "attention" && !is_attention_projection(p->name())) b.feature_map += p->value().numel();
  b.attention -= b.feature_map;
  return b;
}

ModelCost model_cost(const Model& model, int64_t seq_len, int64_t context) {
  NA_CHECK(seq_len > 0 && context > 0, "cost model", "seq_len and context must be > 0, got ", seq_len, " and ",
           context);
  ModelCost c;
  c.params = param_counts(model.params());
  c.seq_len = seq_len;
  const ModelAnatomy anatomy = model.anatomy();
  for (const Parameter* w : anatomy.matmul_weights) c.matmul_flops_per_token += 6.0 * static_cast<double>(w->value().numel());
  for (const AttentionUse& a : anatomy.attention) {
    const AttentionCost ac = attention_cost(a, seq_len);
    c.attention_flops_per_token += ac.flops_per_token;
    if (!ac.approximation.empty()) c.approximations.push_back(ac.approximation);
  }
  c.train_flops_per_token = c.matmul_flops_per_token + c.attention_flops_per_token;
  c.state_context = context;
  if (model.recurrent_unsupported().empty()) {
    c.state_kind = "fast_weights";
    c.state_bytes = static_cast<int64_t>(model.begin_recurrent(1)->bytes());
  } else {
    c.state_kind = "kv_cache";
    c.state_bytes = 2 * static_cast<int64_t>(anatomy.attention.size()) * context * model.dims().d_model *
                    static_cast<int64_t>(sizeof(float));
  }
  return c;
}

std::string state_label(const std::string& state_kind) {
  return state_kind == "kv_cache" ? "KV cache" : "fast-weight state";
}

}  // namespace na
