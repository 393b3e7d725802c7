// Shape: up to kMaxDims extents, row-major.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>

namespace na {

constexpr int kMaxDims = 5;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  template <class It>
  static Shape from_range(It begin, It end) {
    Shape s;
    for (It it = begin; it != end; ++it) s.push_back(*it);
    return s;
  }

  int rank() const { return rank_; }
  // Negative i counts from the end, as in Python.
  int64_t operator[](int i) const { return d_[axis(i)]; }
  int64_t& operator[](int i) { return d_[axis(i)]; }
  int64_t numel() const;
  // Normalises a possibly negative axis; throws if out of range.
  int axis(int i) const;
  void push_back(int64_t extent);
  const int64_t* begin() const { return d_.data(); }
  const int64_t* end() const { return d_.data() + rank_; }
  // Product of extents in [from, to).
  int64_t prod(int from, int to) const;

  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const;  // "(2, 3, 4)"

 private:
  std::array<int64_t, kMaxDims> d_{};
  int rank_ = 0;
};

std::ostream& operator<<(std::ostream& os, const Shape& s);

}  // namespace na
