#include "nanoattn/arena.h"

#include <algorithm>
#include <cstdlib>

#include "nanoattn/error.h"
#include "nanoattn/tensor.h"

namespace na {

namespace {
constexpr size_t kFirstChunk = size_t(1) << 20;
// Chunks double up to this size, then grow by it: doubling alone reserved 27 GiB of address
// space for a 10 GiB step (T = 1M causal linear attention), which the kernel refuses.
constexpr size_t kMaxGrowth = size_t(1) << 30;
size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }
}  // namespace

size_t Arena::next_chunk_size(size_t last, size_t min_bytes) {
  const size_t grown = last == 0 ? kFirstChunk : std::min(2 * last, last + kMaxGrowth);
  return round_up(std::max(min_bytes, grown), kAlignment);
}

size_t Arena::merged_size(size_t high_water) {
  // The last steps' peak, plus room for alignment padding that lands differently in one chunk.
  return round_up(high_water + high_water / 64 + kAlignment, kAlignment);
}

Arena::~Arena() {
  for (Chunk& c : chunks_) aligned_free(c.mem);
}

// Big chunks get transparent huge pages (aligned_alloc_bytes): at T = 1M the 4 KiB page faults
// of a step's fresh chunks cost 40 s of system time, more than the step itself.
void Arena::add_chunk(size_t size) {
  size = block_bytes(size);
  std::byte* mem;
  try {
    mem = static_cast<std::byte*>(aligned_alloc_bytes(size));
  } catch (const Error&) {
    throw Error("Arena", cat("out of memory allocating a chunk of ", size, " bytes (", capacity(),
                             " already held); use a shorter sequence, a smaller batch, or recompute: true"));
  }
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
    add_chunk(next_chunk_size(chunks_.empty() ? 0 : chunks_.back().size, bytes + align));
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
    for (Chunk& c : chunks_) aligned_free(c.mem);
    chunks_.clear();
    add_chunk(merged_size(high_water_));
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
