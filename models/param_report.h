// How a model's parameters divide among its parts: embeddings, attention, feed-forward, norms,
// head (an untied lm_head), other. A parameter's group is the type of the block that created
// it (ParamStore records it). The store holds each parameter once, so weights shared by a
// repeat (share: true) or tied to the head are counted once.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "param_store.h"

namespace na {

struct ParamGroup {
  std::string group;
  int64_t tensors = 0, scalars = 0;
};

// 834432 -> "834,432" (the tables' number format)
std::string with_commas(int64_t n);

// The non-empty groups, in the order of param_groups().
std::vector<ParamGroup> param_breakdown(const ParamStore& store);

// An aligned text table: group, tensors, params, % of the total, and a total line. With
// per_tensor it is preceded by one line per parameter: name, shape, params, group.
std::string format_param_table(const ParamStore& store, bool per_tensor);

}  // namespace na
