// The one thread that runs the addon's LibTorch work, in submission order.
//
// Why one long-lived thread instead of libuv's pool: glibc gives each thread that allocates its own malloc
// arena and keeps freed memory in it. A training step allocates hundreds of MB of activations; when
// consecutive steps land on different pool threads, every arena ends up holding a step's worth of memory and
// each step first-touches fresh pages. Measured on GPT-2 4x256 (vocab 8k, 8x128 tokens): peak RSS 1103 MB
// on the pool vs 601 MB on one thread, and the step itself faster (docs/PERFORMANCE.md).
#pragma once
#include <functional>

namespace nodetune {

// Queues `task` on the compute thread (started on first use, never stopped: it idles on a condition
// variable and dies with the process). Tasks must not throw; wrap them.
void run_on_compute_thread(std::function<void()> task);

// LibTorch's intra-op thread count for the compute thread (under OpenMP the setting is per thread). Applied by
// the compute thread itself just before its next task, never as a task of its own: at::set_num_threads also
// rebuilds LibTorch's global pthreadpool, and a rebuild still running when the process exits races the pool's
// static destructor (a double free: seen as malloc_consolidate() aborts, segfaults and hangs at exit in about
// 3 of 100 short-lived processes that only loaded the addon).
void set_compute_thread_torch_threads(int threads);

}  // namespace nodetune
