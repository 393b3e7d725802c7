// The attention plugin SDK: the IAttention interface every attention type implements, the
// ProjectedAttention base class that does the Q/K/V/O projections (so most plugins write only
// the inner attention), and the entry point macro.
//
// A plugin is a shared library exporting one extern "C" symbol, `nanoattn_attention_plugin`,
// that returns a descriptor whose first fields are the ABI version. The host checks it, reads
// the plugin's declared options, capabilities and parameters, validates the experiment's YAML
// against them, allocates and names the parameters, and only then creates the attention.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nanoattn/core.h"
#include "nanoattn/ops.h"
#include "nanoattn/version.h"

namespace na {

// Bump the major version for any change to the layout of these types or the vtable; minor
// for additions an older plugin can ignore.
inline constexpr uint32_t kAttentionAbiMajor = 1;
inline constexpr uint32_t kAttentionAbiMinor = 1;  // 1: Capabilities::kv_cache

// ---- options: declared by the plugin, validated by the host -------------------------------
enum class OptionType { Int, Float, Bool, String };
using OptionValue = std::variant<int64_t, double, bool, std::string>;
const char* option_type_name(OptionType t);
std::string option_value_str(const OptionValue& v);

struct OptionSpec {
  std::string name;
  OptionType type;
  OptionValue default_value;  // of the declared type
  std::string doc;            // one line
  std::vector<std::string> choices = {};  // String options: the allowed values (empty: any)
};

// Resolved option values: every declared option, given or defaulted.
class Options {
 public:
  int64_t get_int(const std::string& name) const;
  double get_float(const std::string& name) const;
  bool get_bool(const std::string& name) const;
  const std::string& get_string(const std::string& name) const;
  void set(const std::string& name, OptionValue value) { values_[name] = std::move(value); }
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  const std::map<std::string, OptionValue>& values() const { return values_; }

 private:
  const OptionValue& get(const std::string& name) const;
  std::map<std::string, OptionValue> values_;
};

// ---- capabilities -------------------------------------------------------------------------
struct Capabilities {
  bool causal = false;              // can run autoregressively (no look at later tokens)
  bool bidirectional = false;       // can attend to every position
  bool recurrent = false;           // implements init_state / step (an RNN form)
  bool needs_fixed_length = false;  // parameters depend on the sequence length
  bool key_padding_mask = false;    // honours AttentionContext::key_padding_mask
  // ABI 1.1: implements init_state / step with a state that grows with the tokens seen (a KV
  // cache, not an RNN). Appended last, inside what was padding, so nothing after it moves; the
  // host reads it as false for a plugin built for ABI 1.0 (that byte was never declared there).
  bool kv_cache = false;
};

// ---- parameters: declared by the plugin, allocated and named by the host ------------------
struct Init {
  enum Kind { Zeros, Ones, Normal, Uniform } kind = Normal;
  float a = 0.0f, b = 0.02f;  // Normal: mean, stddev. Uniform: low, high.
  static Init zeros() { return {Zeros, 0, 0}; }
  static Init ones() { return {Ones, 0, 0}; }
  static Init normal(float stddev, float mean = 0.0f) { return {Normal, mean, stddev}; }
  static Init uniform(float low, float high) { return {Uniform, low, high}; }
};

struct ParamSpec {
  std::string name;  // local, dotted: "qkv.weight"; the host prefixes the block's path
  Shape shape;
  Init init;
};

// The parameters the host allocated for one attention, looked up by their declared names.
class ParamSet {
 public:
  void add(std::string name, Var v) { entries_.push_back({std::move(name), v}); }
  const Var& operator[](std::string_view name) const;
  bool has(std::string_view name) const;

 private:
  struct Entry {
    std::string name;
    Var var;
  };
  std::vector<Entry> entries_;
};

// Fills t as `init` says, drawing from `key`.
void apply_init(const Init& init, const Tensor& t, uint64_t key);

// Allocates a ParamSet for specs (values drawn from `seed` by each Init): for tests and tools
// that run an attention without a model around it.
struct OwnedParams {
  std::vector<Parameter> params;
  ParamSet set;
};
OwnedParams make_params(const std::vector<ParamSpec>& specs, uint64_t seed);

// ---- configuration and per-call context ---------------------------------------------------
struct AttentionConfig {
  int64_t d_model = 0;
  int64_t n_heads = 1;
  int64_t max_len = 0;   // longest sequence it will see (for needs_fixed_length plugins)
  bool causal = true;    // how the model uses it
  Options options;       // resolved against the plugin's declared options
  uint64_t seed = 0;     // for any randomness of its own (e.g. random features)
};

struct AttentionContext {
  const Tensor* key_padding_mask = nullptr;  // (B, S): nonzero = padding, never attended to
  bool training = false;
};

// State of one sequence batch for token-by-token steps: an RNN's (Capabilities::recurrent),
// or a KV cache (Capabilities::kv_cache).
class AttentionState {
 public:
  virtual ~AttentionState() = default;
  // Memory held: constant in the number of steps taken for an RNN; for a KV cache, the bytes
  // of the rows cached so far (growing linearly with the tokens seen).
  virtual size_t bytes() const = 0;
};

// ---- the interface ------------------------------------------------------------------------
class IAttention {
 public:
  virtual ~IAttention() = default;
  virtual std::vector<ParamSpec> parameters() const = 0;
  // x: (B, T, C) -> (B, T, C)
  virtual Var forward(const Var& x, const ParamSet& p, const AttentionContext& ctx) = 0;
  // The same function built naively from primitive ops (O(T^2), dense masks): the test oracle.
  virtual Var reference(const Var& x, const ParamSet& p, const AttentionContext& ctx) = 0;
  // Token-by-token form (Capabilities::recurrent or kv_cache). x_t: (B, C) -> (B, C), advancing
  // `state` by one token; inference only (called under NoGrad).
  virtual std::unique_ptr<AttentionState> init_state(int64_t batch) const;
  virtual Var step(AttentionState& state, const Var& x_t, const ParamSet& p) const;
};

// ---- the SDK base class: Q/K/V/O projections around an inner attention --------------------
// Parameters: qkv.weight (2*H*dk + C, C), qkv.bias, proj.weight (C, C), proj.bias, where dk
// is key_dim() (C/H unless a plugin widens its keys). Layout of qkv rows: [q | k | v].
class ProjectedAttention : public IAttention {
 public:
  explicit ProjectedAttention(const AttentionConfig& config);
  std::vector<ParamSpec> parameters() const override;
  Var forward(const Var& x, const ParamSet& p, const AttentionContext& ctx) override;
  Var reference(const Var& x, const ParamSet& p, const AttentionContext& ctx) override;
  Var step(AttentionState& state, const Var& x_t, const ParamSet& p) const override;

 protected:
  // q, k: (B, H, T, dk)  v: (B, H, T, dv) -> (B, H, T, dv)
  virtual Var attend(const Var& q, const Var& k, const Var& v, const ParamSet& p,
                     const AttentionContext& ctx) = 0;
  virtual Var attend_reference(const Var& q, const Var& k, const Var& v, const ParamSet& p,
                               const AttentionContext& ctx) = 0;
  // One token: q_t, k_t: (B, H, dk)  v_t: (B, H, dv) -> (B, H, dv). Recurrent or KV-cache
  // plugins only.
  virtual Var attend_step(AttentionState& state, const Var& q, const Var& k, const Var& v,
                          const ParamSet& p) const;
  // Parameters beyond the projections (e.g. a learned gate), by local name.
  virtual std::vector<ParamSpec> extra_parameters() const { return {}; }
  virtual int64_t key_dim() const { return config_.d_model / config_.n_heads; }
  int64_t value_dim() const { return config_.d_model / config_.n_heads; }

  AttentionConfig config_;

 private:
  template <class Attend>
  Var project(const Var& x, const ParamSet& p, Attend&& attend);
};

// ---- the entry point ----------------------------------------------------------------------
struct PluginInfo {
  std::string name;
  std::string description;  // one line: what it is, the paper
  Capabilities capabilities;
  std::vector<OptionSpec> options;
  // Option sets the conformance suite runs (e.g. one per feature map); empty: the defaults.
  std::vector<std::map<std::string, OptionValue>> test_variants = {};
};
// Capabilities (bools) follows two std::strings, so it starts 8-byte aligned and `options` starts
// at the next multiple of 8: ABI 1.1's kv_cache grew it from 5 to 6 bytes without moving
// `options`. A field that would cross those 8 bytes needs an ABI major bump.
static_assert(sizeof(Capabilities) <= alignof(std::vector<OptionSpec>) && sizeof(std::string) % 8 == 0,
              "Capabilities outgrew the 8 bytes ABI 1.0 gave it: bump kAttentionAbiMajor");

}  // namespace na

extern "C" {
// What `nanoattn_attention_plugin()` returns. The first two fields never move.
struct NaAttentionPluginDescriptor {
  uint32_t abi_major;
  uint32_t abi_minor;
  const char* fingerprint;  // compiler, C++ standard library and nanoattn version it was built with
  const na::PluginInfo* (*info)();
  // Creates an instance; throws na::Error for a configuration it cannot run.
  na::IAttention* (*create)(const na::AttentionConfig* config);
};
}

// The build fingerprint of whoever includes this header (host and plugin compare theirs).
#define NANOATTN_STR2_(x) #x
#define NANOATTN_STR_(x) NANOATTN_STR2_(x)
#define NANOATTN_BUILD_FINGERPRINT                                                     \
  "gcc " __VERSION__ "; libstdc++ " NANOATTN_STR_(_GLIBCXX_RELEASE) " cxx11abi "       \
  NANOATTN_STR_(_GLIBCXX_USE_CXX11_ABI) "; nanoattn " NANOATTN_VERSION

// In one .cpp of a plugin: NANOATTN_ATTENTION_PLUGIN(MyAttention, my_info) where
// `const na::PluginInfo& my_info()` describes it and MyAttention(const AttentionConfig&) exists.
// Everything is built on first call, never by a static constructor at load time.
#define NANOATTN_ATTENTION_PLUGIN(Class, info_fn)                                         \
  extern "C" __attribute__((visibility("default"))) const NaAttentionPluginDescriptor*   \
  nanoattn_attention_plugin() {                                                          \
    static const NaAttentionPluginDescriptor descriptor{                                 \
        ::na::kAttentionAbiMajor, ::na::kAttentionAbiMinor, NANOATTN_BUILD_FINGERPRINT,  \
        []() -> const ::na::PluginInfo* { return &info_fn(); },                          \
        [](const ::na::AttentionConfig* c) -> ::na::IAttention* { return new Class(*c); }}; \
    return &descriptor;                                                                  \
  }
