#include "core/workers.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

#include "core/runtime.h"

namespace nodetune {

int worker_count() {
  static const int count = std::max({1, at::get_num_threads(), runtime_info().blas.threads});
  return count;
}

void parallel_range(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  const int64_t chunks = std::min<int64_t>(worker_count(), std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
  if (chunks <= 1) return fn(begin, end);
  const int64_t step = (n + chunks - 1) / chunks;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(chunks));
  std::vector<std::thread> threads;
  for (int64_t c = 1; c < chunks; ++c) {
    const int64_t lo = begin + c * step, hi = std::min(end, lo + step);
    if (lo >= hi) break;
    threads.emplace_back([&, c, lo, hi] {
      try {
        fn(lo, hi);
      } catch (...) {
        errors[size_t(c)] = std::current_exception();
      }
    });
  }
  try {
    fn(begin, std::min(end, begin + step));
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace nodetune
