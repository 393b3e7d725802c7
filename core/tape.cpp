#include "nanoattn/tape.h"

#include <chrono>
#include <cstring>

#include "nanoattn/error.h"
#include "nanoattn/profile.h"

namespace na {

namespace {
constexpr size_t kNodeBlock = 256;
}

Node* Var::live() const {
  NA_CHECK(node_ != nullptr, "Var", "used before it was assigned a value");
  NA_CHECK(node_->tape == nullptr || node_->tape->generation() == generation_, "Var",
           "used after its tape was reset: intermediate values live until tape().reset(); keep "
           "what you need with .value().clone()");
  return node_;
}

const Tensor& Var::grad_acc() const {
  Node* n = live();
  if (!n->grad.defined())
    n->grad = n->tape ? n->tape->grad_buffer(n->value.shape(), true) : Tensor::zeros(n->value.shape());
  return n->grad;
}

const Tensor& Var::grad_sink(float& beta) const {
  Node* n = live();
  beta = n->grad.defined() ? 1.0f : 0.0f;
  if (!n->grad.defined())
    n->grad = n->tape ? n->tape->grad_buffer(n->value.shape(), false) : Tensor::empty(n->value.shape());
  return n->grad;
}

Parameter::Parameter(std::string name, Tensor value) : name_(std::move(name)), node_(new Node) {
  NA_CHECK(value.defined(), "Parameter", "'", name_, "' needs a value");
  node_->grad = Tensor::zeros(value.shape());
  node_->value = std::move(value);
  node_->requires_grad = true;
}

Tape::Tape() = default;

Tape::~Tape() { destroy_entries(); }

Tensor Tape::alloc(const Shape& shape) {
  for (int64_t d : shape)
    NA_CHECK(d >= 0, "Tape::alloc", "cannot allocate shape ", shape, ": extents must be >= 0");
  return Tensor::borrow(arena_.alloc_floats(shape.numel()), shape);
}

Tensor Tape::zeros(const Shape& shape) {
  Tensor t = alloc(shape);
  if (t.numel()) std::memset(t.data(), 0, t.numel() * sizeof(float));
  return t;
}

Tensor Tape::grad_buffer(const Shape& shape, bool zero) {
  auto it = spare_grads_.find(shape.numel());
  if (it == spare_grads_.end() || it->second.empty()) return zero ? zeros(shape) : alloc(shape);
  Tensor t = Tensor::borrow(it->second.back(), shape);
  it->second.pop_back();
  if (zero && t.numel()) std::memset(t.data(), 0, t.numel() * sizeof(float));
  return t;
}

// Once its own backward entry ran, nothing reads an intermediate's gradient again, so its
// buffer can hold a gradient met later in the walk: the tape then needs about half the memory.
void Tape::recycle_grad(Node* n) {
  if (n->tape != this || !n->grad.defined()) return;
  spare_grads_[n->grad.numel()].push_back(n->grad.data());
  n->grad = Tensor();
}

Node* Tape::new_node() {
  size_t block = nodes_used_ / kNodeBlock, slot = nodes_used_ % kNodeBlock;
  if (block == node_blocks_.size()) node_blocks_.emplace_back(new Node[kNodeBlock]);
  ++nodes_used_;
  Node* n = &node_blocks_[block][slot];
  *n = Node{};
  n->tape = this;
  return n;
}

Var Tape::output(const Shape& shape, bool requires_grad) {
  Node* n = new_node();
  n->value = alloc(shape);
  n->requires_grad = requires_grad && grad_enabled_;
  return Var(n, generation_);
}

Var Tape::output(const Shape& shape, std::initializer_list<Var> inputs) {
  bool any = false;
  for (const Var& v : inputs) any = any || (v.defined() && v.requires_grad());
  return output(shape, any);
}

Var Tape::leaf(const Tensor& value, bool requires_grad) {
  NA_CHECK(value.defined(), "Tape::leaf", "needs a defined tensor");
  Node* n = new_node();
  n->value = value;
  n->requires_grad = requires_grad;
  return Var(n, generation_);
}

void Tape::backward(const Var& loss) {
  NA_CHECK(loss.numel() == 1, "backward",
           "the output has shape ", loss.shape(), ", not one element: pass a seed gradient of "
           "that shape, backward(out, seed), or reduce it to a scalar first (e.g. mean)");
  backward(loss, Tensor::full(loss.shape(), 1.0f));
}

void Tape::backward(const Var& out, const Tensor& seed) {
  NA_CHECK(!consumed_, "backward",
           "this tape's backward already ran and freed its entries; call tape().reset() and run "
           "the forward pass again before calling backward() once more");
  NA_CHECK(seed.shape() == out.shape(), "backward", "seed gradient shape ", seed.shape(),
           " does not match the output shape ", out.shape());
  NA_CHECK(out.requires_grad(), "backward",
           "the output does not require a gradient: no parameter or input with requires_grad "
           "led to it, or it was computed inside a NoGrad scope");
  Node* root = out.node();
  Tensor g = root->tape ? root->tape->alloc(seed.shape()) : Tensor::empty(seed.shape());
  g.copy_from(seed);
  if (root->grad.defined()) {
    for (int64_t i = 0; i < g.numel(); ++i) root->grad[i] += g[i];
  } else {
    root->grad = g;
  }
  run_backward(root);
}

void Tape::run_backward(Node*) {
  consumed_ = true;
  struct Cleanup {
    Tape* t;
    ~Cleanup() { t->destroy_entries(); }
  } cleanup{this};
  // A backward run inside another's entry (a recomputed block's, on a scratch tape) is timed
  // as part of that entry.
  if (profile::enabled() && !profile::in_backward()) {
    run_backward_profiled();
    return;
  }
  for (size_t i = entries_.size(); i-- > 0;) {
    const Entry& e = entries_[i];
    if (!e.out->grad.defined()) continue;
    e.run(e.closure);
    recycle_grad(e.out);
  }
}

void Tape::run_backward_profiled() {
  struct InBackward {
    InBackward() { profile::set_in_backward(true); }
    ~InBackward() { profile::set_in_backward(false); }
  } in_backward;
  for (size_t i = entries_.size(); i-- > 0;) {
    const Entry& e = entries_[i];
    if (!e.out->grad.defined()) continue;
    const auto start = std::chrono::steady_clock::now();
    const size_t bytes = arena_.bytes_in_use();
    e.run(e.closure);
    profile::backward_entry(i, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                            arena_.bytes_in_use() - bytes);
    recycle_grad(e.out);
  }
}

void Tape::destroy_entries() {
  for (Entry& e : entries_)
    if (e.destroy) e.destroy(e.closure);
  entries_.clear();
}

void Tape::reset() {
  destroy_entries();
  // Wipe the nodes (dropping any owned tensors) but keep them pointing at this tape, so a
  // stale Var is caught by the generation check instead of reading an empty node.
  for (size_t i = 0; i < nodes_used_; ++i) {
    Node& n = node_blocks_[i / kNodeBlock][i % kNodeBlock];
    n = Node{};
    n.tape = this;
  }
  nodes_used_ = 0;
  spare_grads_.clear();
  arena_.reset();
  ++generation_;
  consumed_ = false;
}

namespace {
thread_local Tape* current_tape = nullptr;  // set by a TapeScope
}

Tape& tape() {
  thread_local Tape t;
  return current_tape ? *current_tape : t;
}

TapeScope::TapeScope(Tape& t) : saved_(current_tape) { current_tape = &t; }
TapeScope::~TapeScope() { current_tape = saved_; }

}  // namespace na
