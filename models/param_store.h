// The model's parameters: named with stable dotted paths ("blocks.3.attn.qkv.weight"), in
// creation order. The name is the checkpoint's dataset path and the optimizer state's key.
#pragma once
#include <deque>
#include <string>
#include <vector>

#include "nanoattn/attention.h"

namespace na {

class ParamStore {
 public:
  // A new parameter drawn by `init` from a key derived from (seed, name); a duplicate name is
  // an error (blocks that share weights use find()).
  Parameter& create(const std::string& name, const Shape& shape, const Init& init);
  Parameter* find(const std::string& name);
  Parameter& get(const std::string& name);  // throws listing similar names
  std::vector<Parameter*> all();
  size_t size() const { return params_.size(); }
  int64_t count() const;  // number of scalars
  void set_seed(uint64_t seed) { seed_ = seed; }
  uint64_t seed() const { return seed_; }

 private:
  std::deque<Parameter> params_;  // stable addresses
  uint64_t seed_ = 0;
};

}  // namespace na
