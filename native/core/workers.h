// Loops of nodetune's own kernels (quantized products, NF4 coding) split over the process's cores by a small pool
// of threads started once. LibTorch's intra-op pool is one thread where OpenBLAS owns the cores (lib/threads.ts),
// so at::parallel_for would run these on one core; the BLAS's thread count is the number of cores the process uses.
#pragma once
#include <cstdint>
#include <functional>

namespace nodetune {

// Threads a split uses: the larger of LibTorch's intra-op threads and the BLAS's (read once).
int worker_count();

// fn(lo, hi) over [begin, end) in up to worker_count() contiguous chunks of at least `grain` items; the calling
// thread runs the first. The other chunks go to the pool's threads (started on first use, never stopped: between
// calls they spin for a few microseconds, then sleep on a condition variable). A call made while the pool is busy
// (from another thread, or from inside a chunk) runs its chunks on the calling thread. An exception in any chunk
// is rethrown after all have finished.
void parallel_range(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace nodetune
