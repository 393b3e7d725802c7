// Fixed chunking with per-chunk scratch: items [0, n) cut into at most `max_slots` chunks of
// consecutive items; chunk c runs its items in order and owns scratch slot c. Allocate
// count * (scratch per slot) on the tape before run(). Which thread runs a chunk never changes
// a number (the chunks depend only on n).
#pragma once
#include <algorithm>
#include <cstdint>

#include "nanoattn/parallel.h"

namespace na::sparse {

struct Slots {
  int64_t n, per, count;
  Slots(int64_t n_, int64_t max_slots) : n(n_) {
    per = std::max<int64_t>(1, (n + max_slots - 1) / max_slots);
    count = (n + per - 1) / per;
  }
  template <class Body>  // body(slot, item)
  void run(const Body& body) const {
    parallel_for(count, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; ++c)
        for (int64_t i = c * per, e = std::min(n, i + per); i < e; ++i) body(c, i);
    });
  }
};

}  // namespace na::sparse
