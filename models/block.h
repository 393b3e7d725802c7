// Blocks: the units a model is assembled from, registered by name. Each block file ends with
// one registration line; the builder is a loop over the YAML list and the registry.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "integer_text.h"
#include "nanoattn/attention.h"
#include "nanoattn/ops.h"

namespace na {

class ParamStore;
class PluginRegistry;
class RecurrentState;
struct ModelDims;

struct ForwardOptions {
  bool training = false;      // dropout on
  uint64_t dropout_key = 0;   // fresh per step (from the run's Rng)
};

// What a block sees when it runs.
struct BlockInput {
  std::span<const int32_t> ids;  // B*T token ids (for embeddings)
  int64_t B = 0, T = 0;
  ForwardOptions opt;
  int64_t pos0 = 0;                  // position of the first of the T tokens
  RecurrentState* state = nullptr;   // non-null: recurrent mode (T == 1), blocks advance it
};

// What the blocks of a model compute per token, for the cost model (cost_model.h): filled by
// Block::describe, one entry per application (a repeat with share: true runs its blocks n times).
struct AttentionUse {
  std::string path, plugin;
  int64_t d_model = 0, n_heads = 0;
  bool causal = true;
  Options options;  // every option the plugin declares, given or defaulted
};
struct ModelAnatomy {
  std::vector<const Parameter*> matmul_weights;  // the weights each token's vector is multiplied by
  std::vector<AttentionUse> attention;           // the attention computed (its projections are above)
};

class Block {
 public:
  virtual ~Block() = default;
  // x: (B, T, C) -> (B, T, C); an embedding ignores x, the LM head returns (B, T, V).
  virtual Var forward(const Var& x, const BlockInput& in) const = 0;

  // Recurrent mode (see recurrent.h). Position-wise blocks need neither: their forward on
  // T == 1 is their step. Why this block cannot run token by token ("" if it can), naming
  // its path; containers ask their children. kv_cache_ok: a state that grows with the tokens
  // (an attention's KV cache) is acceptable; otherwise only constant-memory (RNN) states are.
  virtual std::string recurrent_unsupported(bool /*kv_cache_ok*/) const { return ""; }
  // Adds this block's states to `state`, one per application, in the order forward() will
  // take them (containers recurse in their forward order).
  virtual void init_state(RecurrentState& /*state*/) const {}
  // Adds one application of this block to `a`; containers add their children's, in forward
  // order, once per application. Blocks without matrix products add nothing.
  virtual void describe(ModelAnatomy& /*a*/) const {}

  std::string type;  // its registry name, e.g. "feed_forward" (set by the builder; for profiles)
};

// Everything a block factory may use. `node` is the block's option map; read it through
// option<T>() so that an unknown key is an error naming the file, line and valid keys.
class BlockContext {
 public:
  BlockContext(const std::string& type, const YAML::Node& node, const std::string& path,
               const std::string& where, const ModelDims& dims, ParamStore& store,
               const PluginRegistry& plugins);
  // While a context lives, the parameters created go to its block's report group.
  ~BlockContext();
  BlockContext(const BlockContext&) = delete;
  BlockContext& operator=(const BlockContext&) = delete;

  template <class T>
  T option(const std::string& key, const T& fallback);
  // The block's own option, else the model-level default `defaults[key]` (ModelDims: a
  // `model.<block type>:` map), else `fallback`; errors name whichever was read.
  template <class T>
  T option_or_default(const std::string& key, const YAML::Node& defaults, const T& fallback);
  YAML::Node node_option(const std::string& key);  // a nested map or list (may be null)
  bool has_option(const std::string& key) const { return node_ && node_.IsMap() && node_[key]; }
  // A key every block takes, read by build_blocks (`recompute`): checked like option(), but not
  // one of the block's own options, so finish() neither flags nor lists it.
  template <class T>
  T generic_option(const std::string& key, const T& fallback);
  // Throws if the YAML has keys no option() asked for.
  void finish() const;

  // The block's own parameter path: parent path + "." + its `name` option (or default).
  std::string path_for(const std::string& default_name);
  // Where in the file this block was written ("exp.yaml:12:7"), for errors.
  std::string at() const;
  std::string at(const YAML::Node& n) const;

  const std::string& type() const { return type_; }
  const std::string& parent_path() const { return path_; }
  const std::string& where() const { return where_; }
  const ModelDims& dims() const { return dims_; }
  ParamStore& store() const { return store_; }
  const PluginRegistry& plugins() const { return plugins_; }

 private:
  template <class T>
  T value(const YAML::Node& v, const std::string& what) const;  // v as a T; errors at v start with `what`

  std::string type_;
  YAML::Node node_;
  std::string path_, where_;
  const ModelDims& dims_;
  ParamStore& store_;
  const PluginRegistry& plugins_;
  std::set<std::string> asked_, generic_;
};

using BlockFactory = std::function<std::unique_ptr<Block>(BlockContext&)>;

class BlockRegistry {
 public:
  static BlockRegistry& instance();
  // A duplicate name is an error (caught at start-up, in the registering block's file).
  void add(const std::string& name, const std::string& doc, BlockFactory factory);
  std::unique_ptr<Block> create(const std::string& name, BlockContext& ctx) const;
  // "" if `name` is registered, else a message listing the known blocks.
  std::string unknown(const std::string& name) const;
  std::vector<std::pair<std::string, std::string>> list() const;  // name, doc

 private:
  std::map<std::string, std::pair<std::string, BlockFactory>> blocks_;
};

// Builds a YAML list of {type: options} items under `path` (used by the model and by
// container blocks: repeat, residual).
std::vector<std::unique_ptr<Block>> build_blocks(const YAML::Node& list, const std::string& path,
                                                 const std::string& where, const ModelDims& dims,
                                                 ParamStore& store, const PluginRegistry& plugins);
// A hash of a name that is the same on every platform (std::hash is not): seeds derived from
// parameter paths.
uint64_t stable_hash(const std::string& name);

// describe() of each block of a list, in order.
void describe_blocks(const std::vector<std::unique_ptr<Block>>& blocks, ModelAnatomy& a);

// Runs a list of blocks in order.
Var run_blocks(const std::vector<std::unique_ptr<Block>>& blocks, Var x, const BlockInput& in);

// One line at the bottom of each block file.
#define NANOATTN_REGISTER_BLOCK(name, doc, factory)                        \
  static const bool registered_block_##name = [] {                         \
    ::na::BlockRegistry::instance().add(#name, doc, factory);              \
    return true;                                                           \
  }()

template <class T>
T BlockContext::option(const std::string& key, const T& fallback) {
  asked_.insert(key);
  YAML::Node v = node_ ? node_[key] : YAML::Node();
  if (!v) return fallback;
  return value<T>(v, cat("block '", type_, "': option '", key, "'"));
}

template <class T>
T BlockContext::generic_option(const std::string& key, const T& fallback) {
  generic_.insert(key);
  YAML::Node v = node_ && node_.IsMap() ? node_[key] : YAML::Node();
  if (!v) return fallback;
  return value<T>(v, cat("block '", type_, "': option '", key, "'"));
}

template <class T>
T BlockContext::option_or_default(const std::string& key, const YAML::Node& defaults, const T& fallback) {
  if (has_option(key) || !defaults || !defaults.IsMap() || !defaults[key]) return option<T>(key, fallback);
  asked_.insert(key);
  return value<T>(defaults[key], cat("model.", type_, ": '", key, "'"));
}

template <class T>
T BlockContext::value(const YAML::Node& v, const std::string& what) const {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // Not yaml-cpp's as<T>: one rule for integers everywhere (integer_text.h).
    T x{};
    const std::string why = v.IsScalar() ? parse_integer(v.Scalar(), x) : "must be an integer, got 'a map or list'";
    if (!why.empty()) throw Error(at(v), cat(what, " ", why));
    return x;
  }
  try {
    return v.as<T>();
  } catch (const YAML::Exception&) {
    const char* want = std::is_same_v<T, bool>       ? "true or false"
                       : std::is_integral_v<T>       ? "an integer"
                       : std::is_floating_point_v<T> ? "a number"
                                                     : "a single value";
    throw Error(at(v), cat(what, " must be ", want, ", got '",
                           v.IsScalar() ? v.Scalar() : std::string("a map or list"), "'"));
  }
}

}  // namespace na
