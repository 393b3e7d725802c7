// The state of a model run token by token (Model::begin_recurrent or begin_generation, then
// Model::step): RNN states, and with begin_generation also attention KV caches.
//
// Each application of a stateful block (an attention with an RNN form, a causal conv) owns one
// slot. Slots are made in the order the step runs the blocks, and a step hands them out in
// that same order with a cursor, so a block applied several times (repeat with share: true:
// one set of parameters, n applications) gets a state per application, and finding a state
// costs an index, not a map lookup.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nanoattn/error.h"

namespace na {

class Block;

// One block application's per-sequence state: constant in size for an RNN form, growing with
// the tokens seen for a KV cache (an attention stepped by Model::begin_generation).
class BlockState {
 public:
  virtual ~BlockState() = default;
  virtual size_t bytes() const = 0;
};

class RecurrentState {
 public:
  explicit RecurrentState(int64_t batch) : batch_(batch) {}

  int64_t batch() const { return batch_; }
  // Position of the next token = tokens consumed so far.
  int64_t pos() const { return pos_; }
  // Memory held by every block's state: for RNN blocks the same after 1 token and after a
  // million; a KV cache's grows by its rows for every token.
  size_t bytes() const;
  size_t slots() const { return slots_.size(); }

  // ---- for blocks ----
  // At begin_recurrent: `owner` appends its state for its next application.
  void add(const Block* owner, std::unique_ptr<BlockState> state);
  // During a step, in the order add() was called: `owner`'s state for this application.
  template <class S>
  S& next(const Block* owner);

  // ---- for Model::step ----
  void begin_step();
  void end_step();  // every slot was taken once; the position advances
  void fail() { broken_ = true; }  // a step threw half-way: some blocks advanced, others not

 private:
  struct Slot {
    const Block* owner;
    std::unique_ptr<BlockState> state;
  };
  std::vector<Slot> slots_;
  int64_t batch_ = 0, pos_ = 0;
  size_t cursor_ = 0;
  bool broken_ = false;
};

// For the model and container blocks: a list of blocks, in order.
std::string recurrent_unsupported(const std::vector<std::unique_ptr<Block>>& blocks, bool kv_cache_ok);  // the first reason
void init_states(const std::vector<std::unique_ptr<Block>>& blocks, RecurrentState& state);

template <class S>
S& RecurrentState::next(const Block* owner) {
  NA_CHECK(cursor_ < slots_.size() && slots_[cursor_].owner == owner, "recurrent step", "a block asked for state ",
           cursor_ + 1, " of ", slots_.size(), ", which ",
           cursor_ < slots_.size() ? "another block made" : "does not exist",
           ": the state was made by another model's begin_recurrent");
  // The owner made this slot, so it holds the owner's state type.
  return static_cast<S&>(*slots_[cursor_++].state);
}

}  // namespace na
