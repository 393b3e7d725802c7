// Declared parameters: lookup by name and initialisation.
#include "nanoattn/attention.h"
#include "nanoattn/rng.h"

namespace na {

const Var& ParamSet::operator[](std::string_view name) const {
  for (const Entry& e : entries_)
    if (e.name == name) return e.var;
  std::string known;
  for (const Entry& e : entries_) known += (known.empty() ? "" : ", ") + e.name;
  throw Error("ParamSet", cat("no parameter '", name, "'; declared: ", known.empty() ? "none" : known));
}

bool ParamSet::has(std::string_view name) const {
  for (const Entry& e : entries_)
    if (e.name == name) return true;
  return false;
}

void apply_init(const Init& init, const Tensor& t, uint64_t key) {
  switch (init.kind) {
    case Init::Zeros: t.fill(0.0f); break;
    case Init::Ones: t.fill(1.0f); break;
    case Init::Normal: fill_normal(t, key, init.a, init.b); break;
    case Init::Uniform: fill_uniform(t, key, init.a, init.b); break;
  }
}

OwnedParams make_params(const std::vector<ParamSpec>& specs, uint64_t seed) {
  OwnedParams out;
  out.params.reserve(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    Tensor t = Tensor::empty(specs[i].shape);
    apply_init(specs[i].init, t, Rng::mix(seed, i));
    out.params.emplace_back(specs[i].name, t);
  }
  for (const Parameter& p : out.params) out.set.add(p.name(), p.var());
  return out;
}

}  // namespace na
