// Promise-returning native calls that run on the addon's compute thread (core/compute_thread.h), off the
// event loop. The JS values passed in `keep_alive` (the wrapped object, input buffers) stay referenced until
// the Promise settles, so neither the object nor borrowed memory can be collected mid-call. Completion comes
// back to the JavaScript thread through a thread-safe function (binding/async.cc) that keeps the event loop
// alive only while calls are in flight.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "binding/addon_data.h"
#include "binding/errors.h"

namespace nodetune::binding {

class PromiseWorker {
 public:
  using Work = std::function<void()>;                     // compute thread: LibTorch only, no N-API
  using Settle = std::function<Napi::Value(Napi::Env)>;  // JavaScript thread: builds the resolved value

  PromiseWorker(Napi::Env env, Work work, Settle settle, const std::vector<Napi::Value>& keep_alive);

  Napi::Promise Promise() const { return deferred_.Promise(); }
  // Hands the work to the compute thread; `this` is deleted after the Promise settles.
  void Queue();
  // The completion channel's callback (JavaScript thread): settles and deletes the worker in `data`.
  static void CallJs(napi_env env, napi_value, void*, void* data);

 private:
  void Execute();               // compute thread
  void Complete(Napi::Env env);  // JavaScript thread

  std::shared_ptr<CompletionChannel> channel_;
  Napi::Promise::Deferred deferred_;
  Work work_;
  Settle settle_;
  std::vector<Napi::ObjectReference> refs_;
  bool failed_ = false;
  ErrorInfo error_;
};

// Sets up the per-environment completion channel (called once from the addon's Init).
void InitAsync(Napi::Env env);

// Queues `work` on the compute thread and returns its Promise.
inline Napi::Promise RunAsync(Napi::Env env, const std::vector<Napi::Value>& keep_alive, PromiseWorker::Work work,
                              PromiseWorker::Settle settle) {
  auto* worker = new PromiseWorker(env, std::move(work), std::move(settle), keep_alive);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace nodetune::binding
