#include "recurrent.h"

#include "block.h"

namespace na {

size_t RecurrentState::bytes() const {
  size_t n = 0;
  for (const Slot& s : slots_) n += s.state->bytes();
  return n;
}

void RecurrentState::add(const Block* owner, std::unique_ptr<BlockState> state) {
  slots_.push_back({owner, std::move(state)});
}

void RecurrentState::begin_step() {
  NA_CHECK(!broken_, "recurrent step",
           "an earlier step failed half-way, leaving the state inconsistent: start again with "
           "begin_recurrent");
  cursor_ = 0;
}

void RecurrentState::end_step() {
  NA_CHECK(cursor_ == slots_.size(), "recurrent step", "the blocks took ", cursor_, " of ",
           slots_.size(), " states: the state was made by another model's begin_recurrent");
  ++pos_;
}

std::string recurrent_unsupported(const std::vector<std::unique_ptr<Block>>& blocks, bool kv_cache_ok) {
  for (const auto& b : blocks)
    if (std::string why = b->recurrent_unsupported(kv_cache_ok); !why.empty()) return why;
  return "";
}

void init_states(const std::vector<std::unique_ptr<Block>>& blocks, RecurrentState& state) {
  for (const auto& b : blocks) b->init_state(state);
}

}  // namespace na
