#include "param_store.h"

#include "block.h"

namespace na {

Parameter& ParamStore::create(const std::string& name, const Shape& shape, const Init& init) {
  NA_CHECK(find(name) == nullptr, "model", "two parameters are named '", name,
           "': give one of the blocks another `name`");
  Tensor t = Tensor::empty(shape);
  // The key depends on the name, not the creation order: adding a block elsewhere in the
  // model leaves every other parameter's initial value unchanged.
  apply_init(init, t, Rng::mix(seed_, stable_hash(name)));
  params_.emplace_back(name, t);
  return params_.back();
}

Parameter* ParamStore::find(const std::string& name) {
  for (Parameter& p : params_)
    if (p.name() == name) return &p;
  return nullptr;
}

Parameter& ParamStore::get(const std::string& name) {
  if (Parameter* p = find(name)) return *p;
  std::string known;
  for (const Parameter& p : params_) known += (known.empty() ? "" : ", ") + p.name();
  throw Error("model", cat("no parameter named '", name, "'; the model has: ", known));
}

std::vector<Parameter*> ParamStore::all() {
  std::vector<Parameter*> out;
  for (Parameter& p : params_) out.push_back(&p);
  return out;
}

int64_t ParamStore::count() const {
  int64_t n = 0;
  for (const Parameter& p : params_) n += p.value().numel();
  return n;
}

}  // namespace na
