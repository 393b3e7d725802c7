// A model: an ordered list of blocks built from YAML, and the parameters they declared.
//
//   model:
//     d_model: 128          # C
//     vocab: 65             # V (the caller fills it in from the tokenizer when it is "auto")
//     max_len: 256          # longest context (learned positions, length-dependent plugins)
//     causal: true
//     init: {std: 0.02, residual_scale: true}   # GPT-2 initialisation (init_scheme.h); optional
//     attention: {plugin: linear, n_heads: 4}   # defaults for every attention block; optional
//     feed_forward: {hidden: 512}              # defaults for every feed_forward block (mult | hidden, chunks)
//     dropout: {p: 0.1}                        # default p for every dropout block
//     blocks:               # each item is {block_type: {its options}}; see `nanoattn blocks`
//       - token_embedding: {}
//       - positional: {kind: learned}
//       - repeat:
//           n: 4
//           blocks:
//             - residual: {norm: layernorm, norm_name: ln1, body: [{attention: {plugin: softmax, n_heads: 4}}]}
//             - residual: {norm: layernorm, norm_name: ln2, body: [{feed_forward: {mult: 4}}]}
//       - layernorm: {name: ln_f}
//       - lm_head: {tied_to: tok}
#pragma once
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "block.h"
#include "param_store.h"
#include "recurrent.h"

namespace na {

class PluginRegistry;

struct ModelDims {
  int64_t d_model = 0, vocab = 0, max_len = 0;
  bool causal = true;
  // model.attention: defaults (plugin, n_heads, options) for every attention block that does not
  // set them, so one override (`model: {attention: {plugin: linear}}`) swaps all of them.
  YAML::Node attention;
  // model.feed_forward: {mult | hidden, chunks} and model.dropout: {p}, the same for those blocks
  // (a block's own option wins; feed_forward's mult and hidden replace each other).
  YAML::Node feed_forward, dropout;
};

class Model {
 public:
  // `where` names the source in errors ("exp.yaml"). Parameters are drawn from `seed`.
  Model(const YAML::Node& model_node, const std::string& where, int64_t vocab,
        const PluginRegistry& plugins, uint64_t seed);

  // ids: B*T token ids -> logits (B, T, V). Records on the current tape unless in NoGrad.
  Var forward(std::span<const int32_t> ids, int64_t B, int64_t T, const ForwardOptions& opt = {}) const;

  // ---- running as an RNN, token by token, in constant memory (inference only) ----
  // Why the model cannot run token by token ("" if it can): names the block path and plugin, e.g.
  // "blocks.0.attn uses plugin 'softmax', which has no RNN form (capabilities: causal, bidirectional)".
  std::string recurrent_unsupported() const;
  // A fresh state for `batch` sequences at position 0; throws with recurrent_unsupported().
  std::unique_ptr<RecurrentState> begin_recurrent(int64_t batch) const;
  // ids: (B) the next token of each sequence -> logits (B, 1, V), equal to the parallel
  // forward's logits at that position; advances the state by one position. Records nothing on
  // the tape and never uses dropout. The logits live in the tape's arena: read them before
  // tape().reset(), which the caller should do after every token (the state survives it).
  Var step(std::span<const int32_t> ids, RecurrentState& state) const;

  // ---- generation, token by token, with RNN states or KV caches (inference only) ----
  // Like recurrent_unsupported, but attentions with a KV cache (capability kv_cache, e.g.
  // softmax) are accepted too: their state grows with the tokens seen (RecurrentState::bytes).
  std::string generation_unsupported() const;
  // A fresh state for `batch` sequences at position 0, stepped by step(); throws with
  // generation_unsupported(). Learned positions still end at max_len (step says so).
  std::unique_ptr<RecurrentState> begin_generation(int64_t batch) const;

  // What a forward pass computes per token (for the cost model): matrix weights and attention
  // layers, once per application.
  ModelAnatomy anatomy() const;

  const ModelDims& dims() const { return dims_; }
  ParamStore& params() { return store_; }
  const ParamStore& params() const { return store_; }

 private:
  ModelDims dims_;
  ParamStore store_;
  std::vector<std::unique_ptr<Block>> blocks_;
};

}  // namespace na
