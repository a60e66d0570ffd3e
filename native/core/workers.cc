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
constexpr auto kSpin = std::chrono::microseconds(100);
// Pieces a split is cut into per thread: threads claim pieces one at a time, so a thread whose core is busy with
// another process leaves its share to the others instead of holding the call up.
constexpr int64_t kPiecesPerThread = 4;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Threads beside the caller, which works on every split too. Never destroyed: its threads live until the process
// exits (no static destructor racing threads that are still parked at exit).
class Pool {
 public:
  explicit Pool(int threads) : errors_(size_t(threads * kPiecesPerThread)) {
    for (int t = 1; t < threads; ++t) std::thread([this] { loop(); }).detach();
  }

  int max_pieces() const { return int(errors_.size()); }

  // fn over [begin, end) in `pieces` contiguous pieces of `step` (pieces <= max_pieces()); false if the pool is busy
  // (another thread's split, or a split inside a piece).
  bool run(int64_t begin, int64_t end, int64_t step, int pieces, const std::function<void(int64_t, int64_t)>& fn) {
    if (in_pool_) return false;
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    in_pool_ = true;
    for (auto& e : errors_) e = nullptr;
    fn_ = &fn, begin_ = begin, end_ = end, step_ = step, pieces_ = pieces;
    done_.store(0, std::memory_order_relaxed);
    // The ticket: this call's number (high half) and the pieces not yet claimed (low half). A thread reads the
    // call's fields only after claiming a piece, and the caller writes the next call's only after every piece is
    // done, so no thread reads them while they change; a thread late for a call fails its claim.
    const uint64_t call = (ticket_.load(std::memory_order_relaxed) >> 32) + 1;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ticket_.store(call << 32 | uint64_t(pieces), std::memory_order_release);
    }
    wake_.notify_all();
    work(call);
    for (int spins = 0; done_.load(std::memory_order_acquire) < pieces; ++spins)
      if (spins < 4096) cpu_relax();
      else std::this_thread::yield();  // a piece still runs on a thread whose core is busy elsewhere
    in_pool_ = false;
    for (auto& e : errors_)
      if (e) std::rethrow_exception(e);
    return true;
  }

 private:
  // Claims and runs pieces of call `call` until none is left.
  void work(uint64_t call) {
    uint64_t t = ticket_.load(std::memory_order_acquire);
    while ((t >> 32) == call && (t & 0xffffffffu) > 0) {
      if (!ticket_.compare_exchange_weak(t, t - 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      const int piece = pieces_ - int(t & 0xffffffffu);
      const int64_t lo = begin_ + piece * step_, hi = std::min(end_, lo + step_);
      try {
        if (lo < hi) (*fn_)(lo, hi);
      } catch (...) {
        errors_[size_t(piece)] = std::current_exception();
      }
      done_.fetch_add(1, std::memory_order_acq_rel);
      t = ticket_.load(std::memory_order_acquire);
    }
  }

  void loop() {
    in_pool_ = true;  // a split inside a piece runs on that piece's thread
    uint64_t seen = 0;
    for (;;) {
      auto call = [&] { return ticket_.load(std::memory_order_acquire) >> 32; };
      const auto until = std::chrono::steady_clock::now() + kSpin;
      while (call() == seen && std::chrono::steady_clock::now() < until) cpu_relax();
      if (call() == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return call() != seen; });
      }
      seen = call();
      work(seen);
    }
  }

  static thread_local bool in_pool_;
  std::mutex busy_;   // one split at a time
  std::mutex mutex_;  // with wake_: parks idle threads
  std::condition_variable wake_;
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int> done_{0};
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t begin_ = 0, end_ = 0, step_ = 0;
  int pieces_ = 0;
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
  const int64_t threads = std::min<int64_t>(worker_count(), std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
  if (threads <= 1) return fn(begin, end);
  static Pool* pool = new Pool(worker_count());
  const int64_t pieces = std::min<int64_t>(threads * kPiecesPerThread, std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
  const int64_t step = (n + pieces - 1) / pieces;
  if (pool->run(begin, end, step, int((n + step - 1) / step), fn)) return;
  fn(begin, end);
}

}  // namespace nodetune
