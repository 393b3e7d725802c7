// All parallelism goes through oneTBB. Work is cut into chunks whose boundaries depend only on
// the problem size and a fixed grain, never on the thread count, and every reduction combines
// its chunks in a fixed order: results are bitwise identical for any number of threads.
#pragma once
#include <cstdint>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>
#include <tbb/partitioner.h>

namespace na {

// Calls body(begin, end) on chunks of [0, n) of at most `grain` items.
template <class Body>
void parallel_for(int64_t n, int64_t grain, const Body& body) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (n <= grain) {
    body(int64_t{0}, n);
    return;
  }
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, n, grain),
      [&](const tbb::blocked_range<int64_t>& r) { body(r.begin(), r.end()); },
      tbb::simple_partitioner());
}

// Grain such that each chunk has roughly `work_per_chunk` units when one item costs
// `cost_per_item` units: keeps tasks big enough to be worth scheduling.
inline int64_t grain_for(int64_t cost_per_item, int64_t work_per_chunk = 1 << 15) {
  if (cost_per_item < 1) cost_per_item = 1;
  int64_t g = work_per_chunk / cost_per_item;
  return g < 1 ? 1 : g;
}

// Deterministic sum over [0, n): chunk(begin, end) returns a double partial sum.
template <class Chunk>
double parallel_sum(int64_t n, int64_t grain, const Chunk& chunk) {
  if (n <= 0) return 0.0;
  if (grain < 1) grain = 1;
  return tbb::parallel_deterministic_reduce(
      tbb::blocked_range<int64_t>(0, n, grain), 0.0,
      [&](const tbb::blocked_range<int64_t>& r, double acc) { return acc + chunk(r.begin(), r.end()); },
      [](double a, double b) { return a + b; }, tbb::simple_partitioner());
}

// Fixed chunking of [0, n) for reductions done by hand: chunk i is
// [i * size, min(n, (i + 1) * size)). Each chunk writes its own partial result; the caller
// then combines them in index order.
struct Chunks {
  int64_t n, size, count;
  Chunks(int64_t n_, int64_t size_) : n(n_), size(size_ < 1 ? 1 : size_), count((n_ + size - 1) / size) {}
  int64_t begin(int64_t i) const { return i * size; }
  int64_t end(int64_t i) const { return (i + 1) * size < n ? (i + 1) * size : n; }
};

// Sets the number of worker threads for the rest of the process (0 = all cores).
void set_num_threads(int n);
int num_threads();

}  // namespace na
