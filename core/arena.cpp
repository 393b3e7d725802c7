#include "nanoattn/arena.h"

#include <algorithm>
#include <cstdlib>

#include "nanoattn/error.h"
#include "nanoattn/tensor.h"

namespace na {

namespace {
constexpr size_t kFirstChunk = size_t(1) << 20;
size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }
}  // namespace

Arena::~Arena() {
  for (Chunk& c : chunks_) aligned_free(c.mem);
}

void Arena::add_chunk(size_t min_bytes) {
  size_t last = chunks_.empty() ? kFirstChunk / 2 : chunks_.back().size;
  size_t size = round_up(std::max(min_bytes, 2 * last), kAlignment);
  auto* mem = static_cast<std::byte*>(std::aligned_alloc(kAlignment, size));
  if (!mem) throw Error("Arena", cat("out of memory allocating a chunk of ", size, " bytes"));
  chunks_.push_back({mem, size});
}

void* Arena::alloc_bytes(size_t bytes, size_t align) {
  align = std::max(align, kAlignment);
  bytes = round_up(std::max<size_t>(bytes, 1), kAlignment);
  while (true) {
    if (current_ < chunks_.size()) {
      size_t start = round_up(offset_, align);
      if (start + bytes <= chunks_[current_].size) {
        offset_ = start + bytes;
        return chunks_[current_].mem + start;
      }
      if (current_ + 1 < chunks_.size()) {
        used_before_current_ += offset_;
        ++current_;
        offset_ = 0;
        continue;
      }
    }
    if (!chunks_.empty()) used_before_current_ += offset_;
    add_chunk(bytes + align);
    current_ = chunks_.size() - 1;
    offset_ = 0;
  }
}

float* Arena::alloc_floats(int64_t n) {
  return static_cast<float*>(alloc_bytes(static_cast<size_t>(n) * sizeof(float), kAlignment));
}

void Arena::reset() {
  high_water_ = high_water();
  if (chunks_.size() > 1) {
    size_t total = capacity();
    for (Chunk& c : chunks_) aligned_free(c.mem);
    chunks_.clear();
    add_chunk(total);
  }
  current_ = 0;
  offset_ = 0;
  used_before_current_ = 0;
}

size_t Arena::bytes_in_use() const { return used_before_current_ + offset_; }

size_t Arena::high_water() const { return std::max(high_water_, bytes_in_use()); }

size_t Arena::capacity() const {
  size_t total = 0;
  for (const Chunk& c : chunks_) total += c.size;
  return total;
}

}  // namespace na
