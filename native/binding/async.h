// Promise-returning native calls that run on a libuv worker thread, off the event loop.
// The JS values passed in `keep_alive` (the wrapped object, input buffers) stay referenced until the
// Promise settles, so neither the object nor borrowed memory can be collected mid-call.
#pragma once
#include <napi.h>

#include <functional>
#include <utility>
#include <vector>

#include "binding/errors.h"

namespace nodetune::binding {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;                     // worker thread: LibTorch only, no N-API
  using Settle = std::function<Napi::Value(Napi::Env)>;  // main thread: builds the resolved value

  PromiseWorker(Napi::Env env, Work work, Settle settle, const std::vector<Napi::Value>& keep_alive)
      : Napi::AsyncWorker(env, "nodetune"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        settle_(std::move(settle)) {
    for (const auto& value : keep_alive) {
      if (value.IsObject()) refs_.push_back(Napi::Persistent(value.As<Napi::Object>()));
    }
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (...) {
      failed_ = true;
      error_ = describe_exception(std::current_exception());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (failed_) {
      deferred_.Reject(MakeError(env, error_).Value());
      return;
    }
    try {
      deferred_.Resolve(settle_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(MakeError(env, describe_exception(std::current_exception())).Value());
    }
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Settle settle_;
  std::vector<Napi::ObjectReference> refs_;
  bool failed_ = false;
  ErrorInfo error_;
};

// Queues `work` on the thread pool and returns its Promise.
inline Napi::Promise RunAsync(Napi::Env env, const std::vector<Napi::Value>& keep_alive, PromiseWorker::Work work,
                              PromiseWorker::Settle settle) {
  auto* worker = new PromiseWorker(env, std::move(work), std::move(settle), keep_alive);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace nodetune::binding
