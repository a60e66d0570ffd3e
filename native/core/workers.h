// Loops of nodetune's own kernels (quantized products, NF4 coding) split over the process's cores by a small pool
// of threads started once. LibTorch's intra-op pool is one thread where OpenBLAS owns the cores (lib/threads.ts),
// so at::parallel_for would run these on one core; the BLAS's thread count is the number of cores the process uses.
#pragma once
#include <cstdint>
#include <functional>

namespace nodetune {

// Threads a split uses: the larger of LibTorch's intra-op threads and the BLAS's (read once).
int worker_count();

// fn(lo, hi) over [begin, end) in contiguous pieces of at least `grain` items (up to 4 per thread of
// worker_count()), run by the calling thread and a pool of threads started on first use and never stopped (between
// calls they poll for 100 us, then sleep on a condition variable). Threads claim pieces one at a time, so a thread
// whose core is busy elsewhere leaves its share to the others. A call made while the pool is busy (from another
// thread, or from inside a piece) runs on the calling thread. An exception in any piece is rethrown after all have
// finished.
void parallel_range(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace nodetune
