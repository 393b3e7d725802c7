#include "nanoattn/tensor.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "nanoattn/error.h"

namespace na {

size_t block_bytes(size_t bytes) {
  const size_t unit = bytes >= kHugeBlock ? kHugePage : kAlignment;
  return (std::max<size_t>(bytes, 1) + unit - 1) / unit * unit;
}

void* aligned_alloc_bytes(size_t bytes) {
  const size_t size = block_bytes(bytes);
  const bool huge = size >= kHugeBlock;
  void* p = std::aligned_alloc(huge ? kHugePage : kAlignment, size);
  if (!p) throw Error("Tensor", cat("out of memory allocating ", size, " bytes"));
  if (huge) madvise(p, size, MADV_HUGEPAGE);  // advice only: without THP it is ignored
  return p;
}

float* aligned_alloc_floats(int64_t n) {
  return static_cast<float*>(aligned_alloc_bytes(static_cast<size_t>(n) * sizeof(float)));
}

void aligned_free(void* p) { std::free(p); }

Tensor Tensor::empty(const Shape& shape) {
  for (int64_t d : shape)
    NA_CHECK(d >= 0, "Tensor", "cannot allocate shape ", shape, ": extents must be >= 0");
  Tensor t;
  t.shape_ = shape;
  t.owner_ = std::shared_ptr<float>(aligned_alloc_floats(shape.numel()), aligned_free);
  t.data_ = t.owner_.get();
  return t;
}

Tensor Tensor::zeros(const Shape& shape) { return full(shape, 0.0f); }

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  t.fill(value);
  return t;
}

Tensor Tensor::from(const Shape& shape, const std::vector<float>& values) {
  NA_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "Tensor::from", "shape ", shape,
           " needs ", shape.numel(), " values, got ", values.size());
  Tensor t = empty(shape);
  std::memcpy(t.data_, values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::borrow(float* data, const Shape& shape) {
  Tensor t;
  t.data_ = data;
  t.shape_ = shape;
  return t;
}

float Tensor::item() const {
  NA_CHECK(numel() == 1, "Tensor::item", "needs a one-element tensor, got shape ", shape_);
  return data_[0];
}

Tensor Tensor::reshape(Shape shape) const {
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < shape.rank(); ++i) {
    if (shape[i] == -1) {
      NA_CHECK(infer < 0, "reshape", "only one extent may be -1 in ", shape);
      infer = i;
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    NA_CHECK(known > 0 && numel() % known == 0, "reshape", "cannot infer -1 reshaping ", shape_,
             " to ", shape);
    shape[infer] = numel() / known;
  }
  NA_CHECK(shape.numel() == numel(), "reshape", "cannot reshape ", shape_, " (", numel(),
           " elements) to ", shape, " (", shape.numel(), " elements)");
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_);
  if (numel()) std::memcpy(t.data_, data_, numel() * sizeof(float));
  return t;
}

void Tensor::fill(float value) const {
  for (int64_t i = 0, n = numel(); i < n; ++i) data_[i] = value;
}

void Tensor::copy_from(const Tensor& src) const {
  NA_CHECK(src.numel() == numel(), "Tensor::copy_from", "source ", src.shape(),
           " and destination ", shape_, " differ in size");
  if (numel()) std::memmove(data_, src.data_, numel() * sizeof(float));
}

std::vector<float> Tensor::to_vector() const { return std::vector<float>(data_, data_ + numel()); }

}  // namespace na
