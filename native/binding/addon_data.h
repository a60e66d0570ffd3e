// Per-environment state of the addon (one per Node.js thread that loads it).
#pragma once
#include <napi.h>

#include <cstddef>
#include <memory>
#include <mutex>

namespace nodetune::binding {

// A thread-safe function to this environment, and whether the environment still exists: an environment (a worker
// thread) can be torn down while the compute thread is still running one of its calls, and the thread-safe function
// is freed then. The compute thread calls it only under `mutex` while `open`; the environment's cleanup hook clears
// `open` under the same mutex before the function goes away.
struct CompletionChannel {
  std::mutex mutex;
  bool open = true;
  napi_threadsafe_function tsfn = nullptr;
};

struct AddonData {
  Napi::FunctionReference error_class;   // lib/errors.ts NodetuneError, handed over once at load
  Napi::FunctionReference tensor_class;  // the Tensor ObjectWrap constructor
  Napi::FunctionReference communicator_class;
  // Brings finished compute-thread calls back to this environment's JavaScript thread (binding/async.cc);
  // referenced (keeps the event loop alive) only while `in_flight` > 0.
  std::shared_ptr<CompletionChannel> completions;
  size_t in_flight = 0;
};

AddonData& GetAddonData(Napi::Env env);

}  // namespace nodetune::binding
