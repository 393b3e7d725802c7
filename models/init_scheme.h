// The model-wide initialisation (`init:` under `model:`), GPT-2 style as the PyTorch peer
// ../shared/reference/charlm.py does it: biases 0, matrices N(0, std), and the output
// projections of residual branches (attention proj.weight, feed_forward fc_out.weight)
// N(0, std / sqrt(2 n_layer)), so the residual stream's variance does not grow with depth.
//
//   init: {std: 0.02, residual_scale: true}    # both optional; these are the defaults
#pragma once
#include <string>

#include <yaml-cpp/yaml.h>

#include "param_store.h"

namespace na {

struct InitScheme {
  float std = 0.02f;
  bool residual_scale = true;
};

// `node` may be null (the defaults). Errors name where:line:col and the valid keys.
InitScheme parse_init_scheme(const YAML::Node& node, const std::string& where);

// After the model is built: every matrix (>= 2 dims) that blocks and plugins declared with
// the default N(0, 0.02) is redrawn with N(0, scheme.std); with residual_scale, every
// parameter marked as a residual output is drawn with its std divided by sqrt(2 n_layer),
// where n_layer is the number of attention blocks built (a repeat with share: true builds one;
// a model without attention leaves them unscaled). Redrawing uses each parameter's own key,
// so the values are those it would have had if declared with that std. Returns n_layer.
int64_t apply_init_scheme(const InitScheme& scheme, ParamStore& store);

}  // namespace na
