// Arena: bump allocation for one training step's intermediates. reset() rewinds it; after the
// first step it has grown to the step's high-water mark and allocates nothing more.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace na {

class Arena {
 public:
  Arena() = default;
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // 64-byte aligned, uninitialised; valid until reset().
  void* alloc_bytes(size_t bytes, size_t align);
  float* alloc_floats(int64_t n);
  // Rewinds. If the last step needed several chunks they are merged into one big enough for
  // all of them, so a steady-state step makes no heap allocation.
  void reset();

  size_t bytes_in_use() const;
  // The most bytes ever in use (nothing is freed between resets, so the last step's use before
  // reset() is its peak): what a step needs, where capacity() counts whole chunks.
  size_t high_water() const;
  size_t capacity() const;
  size_t chunk_count() const { return chunks_.size(); }

  // The size of the chunk added after one of `last` bytes (0: none yet) for an allocation of
  // min_bytes: doubling, but by at most 1 GiB at a time, so the address space reserved stays
  // close to what a large step uses.
  static size_t next_chunk_size(size_t last, size_t min_bytes);
  // The size of the one chunk that replaces several at reset(): the peak use, plus slack.
  static size_t merged_size(size_t high_water);

 private:
  struct Chunk {
    std::byte* mem;
    size_t size;
  };
  void add_chunk(size_t size);

  std::vector<Chunk> chunks_;
  size_t current_ = 0;  // chunk being filled
  size_t offset_ = 0;   // within it
  size_t used_before_current_ = 0;
  size_t high_water_ = 0;  // as of the last reset()
};

}  // namespace na
