#include "param_store.h"

#include "block.h"

namespace na {

std::string param_group(const std::string& block_type) {
  if (block_type == "token_embedding" || block_type == "positional") return "embeddings";
  if (block_type == "attention") return "attention";
  if (block_type == "feed_forward") return "feed-forward";
  if (block_type == "layernorm" || block_type == "rmsnorm" || block_type == "residual") return "norms";
  if (block_type == "lm_head") return "head";
  return "other";
}

const std::vector<std::string>& param_groups() {
  static const std::vector<std::string> groups = {"embeddings", "attention", "feed-forward",
                                                  "norms",      "head",      "other"};
  return groups;
}

bool is_attention_projection(const std::string& name) {
  for (const char* proj : {"qkv", "qv", "proj"})
    for (const char* kind : {".weight", ".bias"}) {
      const std::string local = std::string(proj) + kind;
      if (name == local) return true;
      if (name.size() > local.size() && name.compare(name.size() - local.size() - 1, std::string::npos, "." + local) == 0)
        return true;
    }
  return false;
}

Parameter& ParamStore::create(const std::string& name, const Shape& shape, const Init& init) {
  NA_CHECK(find(name) == nullptr, "model", "two parameters are named '", name,
           "': give one of the blocks another `name`");
  Tensor t = Tensor::empty(shape);
  // The key depends on the name, not the creation order: adding a block elsewhere in the
  // model leaves every other parameter's initial value unchanged.
  apply_init(init, t, Rng::mix(seed_, stable_hash(name)));
  params_.emplace_back(name, t);
  info_.push_back({param_group(building_.empty() ? "" : building_.back()), init, false});
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

std::vector<const Parameter*> ParamStore::all() const {
  std::vector<const Parameter*> out;
  for (const Parameter& p : params_) out.push_back(&p);
  return out;
}

int64_t ParamStore::count() const {
  int64_t n = 0;
  for (const Parameter& p : params_) n += p.value().numel();
  return n;
}

void ParamStore::enter_block(const std::string& type) {
  building_.push_back(type);
  ++built_[type];
}

void ParamStore::leave_block() {
  if (!building_.empty()) building_.pop_back();
}

int64_t ParamStore::blocks_built(const std::string& type) const {
  auto it = built_.find(type);
  return it == built_.end() ? 0 : it->second;
}

size_t ParamStore::index_of(const Parameter& p) const {
  for (size_t i = 0; i < params_.size(); ++i)
    if (&params_[i] == &p) return i;
  throw Error("model", cat("parameter '", p.name(), "' does not belong to this model"));
}

const std::string& ParamStore::group(const Parameter& p) const { return info_[index_of(p)].group; }

const Init& ParamStore::init(const Parameter& p) const { return info_[index_of(p)].init; }

void ParamStore::mark_residual_output(const Parameter& p) { info_[index_of(p)].residual_output = true; }

bool ParamStore::is_residual_output(const Parameter& p) const { return info_[index_of(p)].residual_output; }

void ParamStore::redraw(const Parameter& p, const Init& init) {
  apply_init(init, p.value(), Rng::mix(seed_, stable_hash(p.name())));
  info_[index_of(p)].init = init;
}

}  // namespace na
