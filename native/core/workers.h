// Loops of nodetune's own kernels (quantized products, NF4 coding) split over the process's cores with plain
// threads. LibTorch's intra-op pool is one thread where OpenBLAS owns the cores (lib/threads.ts), so
// at::parallel_for would run these on one core; the BLAS's thread count is the number of cores the process uses.
#pragma once
#include <cstdint>
#include <functional>

namespace nodetune {

// Threads a split uses: the larger of LibTorch's intra-op threads and the BLAS's (read once).
int worker_count();

// fn(lo, hi) over [begin, end) in up to worker_count() contiguous chunks of at least `grain` items; the calling
// thread runs one of them. An exception in any chunk is rethrown after all have finished.
void parallel_range(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace nodetune
