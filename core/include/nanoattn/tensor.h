// Tensor: float32, contiguous, row-major, 64-byte aligned. Copies are cheap handles that share
// storage; reshape() is a view. Storage is either owned (heap, shared by handles) or borrowed
// from an arena (the tape's per-step memory), in which case it is valid until the arena resets.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "nanoattn/shape.h"

namespace na {

constexpr size_t kAlignment = 64;

class Tensor {
 public:
  Tensor() = default;

  // Owned storage.
  static Tensor empty(const Shape& shape);  // uninitialised
  static Tensor zeros(const Shape& shape);
  static Tensor full(const Shape& shape, float value);
  static Tensor from(const Shape& shape, const std::vector<float>& values);
  // Borrowed storage: the caller keeps `data` alive (and 64-byte aligned for fast kernels).
  static Tensor borrow(float* data, const Shape& shape);

  bool defined() const { return data_ != nullptr; }
  float* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  int64_t dim(int axis) const { return shape_[axis]; }
  int64_t numel() const { return shape_.numel(); }
  float& operator[](int64_t i) const { return data_[i]; }
  float item() const;  // the value of a one-element tensor

  // A view with another shape of the same numel; one extent may be -1 (inferred).
  Tensor reshape(Shape shape) const;
  Tensor clone() const;  // owned deep copy
  void fill(float value) const;
  void copy_from(const Tensor& src) const;  // same numel required
  std::vector<float> to_vector() const;

 private:
  float* data_ = nullptr;
  Shape shape_;
  std::shared_ptr<float> owner_;  // null for borrowed storage
};

// Raw 64-byte aligned allocation, freed with aligned_free.
float* aligned_alloc_floats(int64_t n);
void aligned_free(void* p);
// Blocks of kHugeBlock bytes or more are 2 MiB aligned, rounded up to whole 2 MiB pages and
// advised for transparent huge pages: the first touch of fresh gigabytes (a T = 1M step) then
// takes 512x fewer page faults. aligned_alloc_bytes(n) gives at least block_bytes(n) usable
// bytes, freed with aligned_free.
constexpr size_t kHugePage = size_t(2) << 20, kHugeBlock = 4 * kHugePage;
size_t block_bytes(size_t bytes);
void* aligned_alloc_bytes(size_t bytes);

}  // namespace na
