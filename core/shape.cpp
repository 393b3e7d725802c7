#include "nanoattn/shape.h"

#include "nanoattn/error.h"

namespace na {

Shape::Shape(std::initializer_list<int64_t> dims) {
  for (int64_t d : dims) push_back(d);
}

void Shape::push_back(int64_t extent) {
  NA_CHECK(rank_ < kMaxDims, "Shape", "at most ", kMaxDims, " dims are supported, ", str(),
           " would get another");
  // -1 is allowed as "infer this extent" for reshape; Tensor allocation rejects it.
  NA_CHECK(extent >= -1, "Shape", "negative extent ", extent, " in ", str());
  d_[rank_++] = extent;
}

int Shape::axis(int i) const {
  int a = i < 0 ? i + rank_ : i;
  NA_CHECK(a >= 0 && a < rank_, "Shape", "axis ", i, " is out of range for shape ", str());
  return a;
}

int64_t Shape::numel() const { return prod(0, rank_); }

int64_t Shape::prod(int from, int to) const {
  int64_t n = 1;
  for (int i = from; i < to; ++i) n *= d_[i];
  return n;
}

bool Shape::operator==(const Shape& o) const {
  if (rank_ != o.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (d_[i] != o.d_[i]) return false;
  return true;
}

std::string Shape::str() const {
  std::string s = "(";
  for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(d_[i]);
  return s + (rank_ == 1 ? ",)" : ")");
}

std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

}  // namespace na
