#include "init_scheme.h"

#include <cmath>

namespace na {

namespace {

std::string at(const std::string& where, const YAML::Node& n) {
  return n.Mark().line < 0 ? where : cat(where, ":", n.Mark().line + 1, ":", n.Mark().column + 1);
}

constexpr float kDefaultStd = 0.02f;  // what blocks and the SDK declare for their matrices

}  // namespace

InitScheme parse_init_scheme(const YAML::Node& node, const std::string& where) {
  InitScheme s;
  if (!node || node.IsNull()) return s;
  NA_CHECK(node.IsMap(), at(where, node), "model: 'init' must be a map, e.g. init: {std: 0.02, residual_scale: true}");
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (key == "std") {
      bool ok = v.IsScalar();
      try {
        if (ok) s.std = v.as<float>();
      } catch (const YAML::Exception&) {
        ok = false;
      }
      NA_CHECK(ok && std::isfinite(s.std) && s.std > 0, at(where, v), "model: init.std must be a number > 0, got '",
               v.IsScalar() ? v.Scalar() : "a map or list", "'");
    } else if (key == "residual_scale") {
      NA_CHECK(v.IsScalar() && (v.Scalar() == "true" || v.Scalar() == "false"), at(where, v),
               "model: init.residual_scale must be true or false, got '", v.IsScalar() ? v.Scalar() : "a map or list",
               "'");
      s.residual_scale = v.Scalar() == "true";
    } else {
      throw Error(at(where, kv.first), cat("model: init has no key '", key, "'; valid keys: std, residual_scale"));
    }
  }
  return s;
}

int64_t apply_init_scheme(const InitScheme& scheme, ParamStore& store) {
  const int64_t n_layer = store.blocks_built("attention");
  const double residual = scheme.residual_scale && n_layer > 0 ? 1.0 / std::sqrt(2.0 * n_layer) : 1.0;
  for (Parameter* p : store.all()) {
    Init init = store.init(*p);
    if (init.kind != Init::Normal) continue;  // zeros, ones (biases, norms), uniform: as declared
    const bool default_matrix = p->value().shape().rank() >= 2 && init.a == 0.0f && init.b == kDefaultStd;
    double std = default_matrix ? scheme.std : init.b;
    if (store.is_residual_output(*p)) std *= residual;
    if (static_cast<float>(std) == init.b) continue;
    init.b = static_cast<float>(std);
    store.redraw(*p, init);
  }
  return n_layer;
}

}  // namespace na
