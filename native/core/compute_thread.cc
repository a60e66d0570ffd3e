#include "core/compute_thread.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

namespace nodetune {
namespace {

class ComputeThread {
 public:
  ComputeThread() : thread_([this] { loop(); }) { thread_.detach(); }

  // The intra-op thread count to apply before the next task (0: none pending).
  std::atomic<int> pending_threads{0};

  void post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(task));
    }
    ready_.notify_one();
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return !queue_.empty(); });
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      apply_pending_threads();
      task();
    }
  }

  void apply_pending_threads() {
    const int threads = pending_threads.exchange(0);
    if (threads > 0 && threads != at::get_num_threads()) at::set_num_threads(threads);
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  std::thread thread_;
};

ComputeThread& compute_thread() {
  // Never destroyed: the detached thread may still wait on its members while static destructors run at exit.
  static ComputeThread* const compute = new ComputeThread();
  return *compute;
}

}  // namespace

void run_on_compute_thread(std::function<void()> task) { compute_thread().post(std::move(task)); }

void set_compute_thread_torch_threads(int threads) {
  if (threads > 0) compute_thread().pending_threads.store(threads);
}

}  // namespace nodetune
