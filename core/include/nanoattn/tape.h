// Reverse-mode autograd on a tape.
//
// Every differentiable op computes its output at call time and, when gradients are wanted,
// appends one entry (its backward closure) to the current thread's Tape. backward(loss) walks
// the entries in reverse. Gradients always accumulate (+=); zeroing parameter gradients is a
// separate step. Intermediate values, gradients and closures live in the tape's arena, which
// reset() rewinds at the end of each step.
//
// Writing an op (the same API serves plugins' custom functions, like torch.autograd.Function):
//
//   Var scale(Var x, float s) {                         // x: any shape
//     Var out = tape().output(x.shape(), {x});          // value in the arena
//     kernel(x.value(), s, out.value());                // forward
//     record_backward(out, [=] {                        // only when out needs a gradient
//       if (x.requires_grad()) add_scaled(out.grad(), s, x.grad_acc());
//     });
//     return out;
//   }
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nanoattn/arena.h"
#include "nanoattn/error.h"
#include "nanoattn/tensor.h"

namespace na {

class Tape;

// A value in the graph and its gradient. Intermediates are owned by a tape (and die with its
// reset); parameters own theirs.
struct Node {
  Tensor value;
  Tensor grad;  // undefined until something flows into it
  bool requires_grad = false;
  Tape* tape = nullptr;  // null for parameters and other long-lived leaves
};

// A handle to a Node. Cheap to copy; checks on use that its tape was not reset since.
class Var {
 public:
  Var() = default;
  Var(Node* node, uint64_t generation) : node_(node), generation_(generation) {}

  bool defined() const { return node_ != nullptr; }
  const Tensor& value() const { return live()->value; }
  const Shape& shape() const { return live()->value.shape(); }
  int64_t dim(int axis) const { return shape()[axis]; }
  int rank() const { return shape().rank(); }
  int64_t numel() const { return shape().numel(); }
  bool requires_grad() const { return live()->requires_grad; }
  bool has_grad() const { return live()->grad.defined(); }
  // The gradient as it stands (undefined if nothing flowed in yet).
  const Tensor& grad() const { return live()->grad; }
  // The gradient buffer to accumulate into (+=); zero-filled when first asked for.
  const Tensor& grad_acc() const;
  // Like grad_acc() for kernels that can overwrite: returns the buffer and sets `beta` to 0 if
  // it is fresh (contents undefined: write, don't add) or 1 if it already holds a gradient.
  const Tensor& grad_sink(float& beta) const;
  Node* node() const { return live(); }

 private:
  Node* live() const;
  Node* node_ = nullptr;
  uint64_t generation_ = 0;
};

// A long-lived named leaf that owns its value and gradient: a model weight.
class Parameter {
 public:
  Parameter(std::string name, Tensor value);
  const std::string& name() const { return name_; }
  Var var() const { return Var(node_.get(), 0); }
  operator Var() const { return var(); }
  const Tensor& value() const { return node_->value; }
  const Tensor& grad() const { return node_->grad; }
  void zero_grad() const { node_->grad.fill(0.0f); }

 private:
  std::string name_;
  std::unique_ptr<Node> node_;
};

class Tape {
 public:
  Tape();
  ~Tape();
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  // True unless inside a NoGrad scope.
  bool grad_enabled() const { return grad_enabled_; }

  // Scratch memory valid until reset().
  Tensor alloc(const Shape& shape);  // uninitialised
  Tensor zeros(const Shape& shape);
  // An uninitialised array of n T's (index tables and the like).
  template <class T>
  T* scratch(int64_t n) {
    return static_cast<T*>(arena_.alloc_bytes(static_cast<size_t>(n) * sizeof(T), alignof(T)));
  }
  // A new node whose value is allocated here (uninitialised); it requires a gradient when
  // grad is enabled and any (defined) input does.
  Var output(const Shape& shape, std::initializer_list<Var> inputs);
  Var output(const Shape& shape, bool requires_grad);
  // Wraps a tensor (not copied) as a leaf, e.g. an input batch or a test input.
  Var leaf(const Tensor& value, bool requires_grad = false);

  // Appends a backward closure that runs when `out` has received a gradient.
  template <class F>
  void record(const Var& out, F&& backward);

  // Seeds d(loss)/d(loss) = 1 (loss must have one element) or `seed` (same shape as out), runs
  // every recorded backward in reverse and frees the closures. Values, and the gradients of
  // leaves (parameters, inputs), stay readable until reset(); an op output's gradient is
  // recycled for later ones once its own backward ran. A second call before reset() is an error.
  void backward(const Var& loss);
  void backward(const Var& out, const Tensor& seed);

  // Ends the step: drops entries, rewinds the arena, invalidates every Var made since.
  void reset();

  uint64_t generation() const { return generation_; }
  size_t entry_count() const { return entries_.size(); }
  const Arena& arena() const { return arena_; }

 private:
  friend class NoGrad;
  friend class Var;
  struct Entry {
    Node* out;
    void (*run)(void*);
    void (*destroy)(void*);  // null when trivially destructible
    void* closure;
  };
  Node* new_node();
  void destroy_entries();
  void run_backward(Node* root);
  void run_backward_profiled();
  Tensor grad_buffer(const Shape& shape, bool zero);
  void recycle_grad(Node* n);

  Arena arena_;
  std::vector<Entry> entries_;
  std::vector<std::unique_ptr<Node[]>> node_blocks_;
  size_t nodes_used_ = 0;
  uint64_t generation_ = 1;
  bool grad_enabled_ = true;
  bool consumed_ = false;  // backward() ran since the last reset()
  std::unordered_map<int64_t, std::vector<float*>> spare_grads_;  // by numel, for grad_buffer
};

// The current thread's tape (each thread has its own; one is made on first use). Ops call it
// on the thread that runs the model, never inside a parallel_for body: a TBB worker would get
// its own tape, whose arena nobody resets. Allocate scratch before the parallel loop.
Tape& tape();

// Makes `t` the current thread's tape while alive, for ops that run a part of the graph on a
// tape of their own and free it at once: a block recomputed in the backward (recompute,
// reversible layers). Vars of the outer tape stay readable; only `t` records.
class TapeScope {
 public:
  explicit TapeScope(Tape& t);
  ~TapeScope();
  TapeScope(const TapeScope&) = delete;
  TapeScope& operator=(const TapeScope&) = delete;

 private:
  Tape* saved_;
};

// Records nothing while alive (evaluation, sampling).
class NoGrad {
 public:
  NoGrad() : saved_(tape().grad_enabled_) { tape().grad_enabled_ = false; }
  ~NoGrad() { tape().grad_enabled_ = saved_; }
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool saved_;
};

// Shorthand for ops: record on the current tape if `out` needs a gradient.
template <class F>
void record_backward(const Var& out, F&& backward) {
  if (out.requires_grad()) tape().record(out, std::forward<F>(backward));
}

template <class F>
void Tape::record(const Var& out, F&& backward) {
  using Fn = std::decay_t<F>;
  void* mem = arena_.alloc_bytes(sizeof(Fn), alignof(Fn));
  new (mem) Fn(std::forward<F>(backward));
  void (*destroy)(void*) = nullptr;
  if constexpr (!std::is_trivially_destructible_v<Fn>)
    destroy = [](void* p) { static_cast<Fn*>(p)->~Fn(); };
  entries_.push_back({out.node(), [](void* p) { (*static_cast<Fn*>(p))(); }, destroy, mem});
}

}  // namespace na
