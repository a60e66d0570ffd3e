#include "core/workers.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/runtime.h"

namespace nodetune {
namespace {

// How long a pool thread polls for the next call before sleeping: a decoding step makes ~170 products a token with
// tens of microseconds between them, so the next call usually comes while the thread still polls (a wake from the
// condition variable costs a futex call and a scheduling delay each).
constexpr auto kSpin = std::chrono::microseconds(200);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Threads 1..size-1 of a split (the caller is thread 0). Never destroyed: its threads live until the process exits
// (no static destructor racing threads that are still parked at exit).
class Pool {
 public:
  explicit Pool(int size) : errors_(size_t(size)) {
    for (int t = 1; t < size; ++t) std::thread([this, t] { loop(t); }).detach();
  }

  int size() const { return int(errors_.size()); }

  // Runs chunk c of [begin, end) (chunks of `step`) on thread c for c < chunks <= size(); false if the pool is busy
  // (another thread's split, or a split inside a chunk).
  bool run(int64_t begin, int64_t end, int64_t step, int chunks, const std::function<void(int64_t, int64_t)>& fn) {
    if (in_pool_) return false;
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    in_pool_ = true;
    for (auto& e : errors_) e = nullptr;
    fn_ = &fn, begin_ = begin, end_ = end, step_ = step, chunks_ = chunks;
    // Every pool thread acknowledges every call, with a chunk or without: none can still be reading this call's
    // fields when the next call writes them.
    pending_.store(size() - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    chunk(0);
    for (int spins = 0; pending_.load(std::memory_order_acquire) > 0; ++spins)
      if (spins < 4096) cpu_relax();
      else std::this_thread::yield();  // that thread's core is busy with another process
    in_pool_ = false;
    for (auto& e : errors_)
      if (e) std::rethrow_exception(e);
    return true;
  }

 private:
  void chunk(int c) {
    const int64_t lo = begin_ + c * step_, hi = std::min(end_, lo + step_);
    if (lo >= hi) return;
    try {
      (*fn_)(lo, hi);
    } catch (...) {
      errors_[size_t(c)] = std::current_exception();
    }
  }

  void loop(int t) {
    in_pool_ = true;  // a split inside a chunk runs on that chunk's thread
    uint64_t seen = 0;
    for (;;) {
      const auto until = std::chrono::steady_clock::now() + kSpin;
      while (generation_.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < until) cpu_relax();
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      }
      seen = generation_.load(std::memory_order_acquire);
      if (t < chunks_) chunk(t);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  static thread_local bool in_pool_;
  std::mutex busy_;   // one split at a time
  std::mutex mutex_;  // with wake_: parks idle threads
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t begin_ = 0, end_ = 0, step_ = 0;
  int chunks_ = 0;
  std::vector<std::exception_ptr> errors_;
};

thread_local bool Pool::in_pool_ = false;

}  // namespace

int worker_count() {
  static const int count = std::max({1, at::get_num_threads(), runtime_info().blas.threads});
  return count;
}

void parallel_range(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  const int64_t chunks = std::min<int64_t>(worker_count(), std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
  if (chunks <= 1) return fn(begin, end);
  static Pool* pool = new Pool(worker_count());
  const int64_t step = (n + chunks - 1) / chunks;
  if (pool->run(begin, end, step, int(chunks), fn)) return;
  for (int64_t lo = begin; lo < end; lo += step) fn(lo, std::min(end, lo + step));
}

}  // namespace nodetune
