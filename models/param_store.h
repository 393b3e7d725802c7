// The model's parameters: named with stable dotted paths ("blocks.3.attn.qkv.weight"), in
// creation order. The name is the checkpoint's dataset path and the optimizer state's key.
//
// Each parameter also keeps where it came from: the group of the block that created it (for
// the parameter report), its Init (so the model-wide init scheme can redraw it with another
// scale) and whether it is a residual output projection (GPT-2 scales those down).
#pragma once
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "nanoattn/attention.h"

namespace na {

// The report group of the parameters a block type creates: "embeddings" (token_embedding,
// positional), "attention", "feed-forward", "norms" (layernorm, rmsnorm, residual), "head"
// (lm_head), anything else "other".
std::string param_group(const std::string& block_type);
// The groups in report order.
const std::vector<std::string>& param_groups();
// Whether an attention parameter is one of the q/k/v/output projections ("blocks.0.attn.qkv.weight",
// qkv / qv / proj, weight or bias) rather than a plugin's own (delta's beta, linformer's E, ...).
bool is_attention_projection(const std::string& name);

class ParamStore {
 public:
  // A new parameter drawn by `init` from a key derived from (seed, name); a duplicate name is
  // an error (blocks that share weights use find()). It joins the group of the innermost
  // block being built ("other" outside any block).
  Parameter& create(const std::string& name, const Shape& shape, const Init& init);
  Parameter* find(const std::string& name);
  Parameter& get(const std::string& name);  // throws listing similar names
  std::vector<Parameter*> all();
  std::vector<const Parameter*> all() const;
  size_t size() const { return params_.size(); }
  int64_t count() const;  // number of scalars
  void set_seed(uint64_t seed) { seed_ = seed; }
  uint64_t seed() const { return seed_; }

  // For BlockContext: brackets the construction of one block (blocks nest: a residual's norm
  // is built inside the residual, and its parameters belong to the norm).
  void enter_block(const std::string& type);
  void leave_block();
  // How many blocks of this type were built (the init scheme's n_layer counts "attention").
  int64_t blocks_built(const std::string& type) const;

  const std::string& group(const Parameter& p) const;
  const Init& init(const Parameter& p) const;
  // Marks the output projection of a residual branch (attention proj.weight, feed_forward
  // fc_out.weight): GPT-2 draws these with std / sqrt(2 n_layer).
  void mark_residual_output(const Parameter& p);
  bool is_residual_output(const Parameter& p) const;
  // Redraws p in place from its own key with `init`: the values it would have had if it had
  // been created with `init`.
  void redraw(const Parameter& p, const Init& init);

 private:
  struct Info {
    std::string group;
    Init init;
    bool residual_output = false;
  };
  size_t index_of(const Parameter& p) const;  // throws if p is not from this store

  std::deque<Parameter> params_;  // stable addresses
  std::deque<Info> info_;         // info_[i] describes params_[i]
  std::vector<std::string> building_;  // types of the blocks being built, innermost last
  std::map<std::string, int64_t> built_;
  uint64_t seed_ = 0;
};

}  // namespace na
