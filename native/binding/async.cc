#include "binding/async.h"

#include "binding/addon_data.h"
#include "core/compute_thread.h"

namespace nodetune::binding {
namespace {

void Check(Napi::Env env, napi_status status, const char* what) {
  if (status != napi_ok) NAPI_THROW_VOID(Napi::Error::New(env, std::string("nodetune: ") + what + " failed"));
}

}  // namespace

void InitAsync(Napi::Env env) {
  AddonData& data = GetAddonData(env);
  auto channel = std::make_shared<CompletionChannel>();
  napi_value name = Napi::String::New(env, "nodetune");
  Check(env,
        napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, nullptr,
                                        &PromiseWorker::CallJs, &channel->tsfn),
        "creating the completion channel");
  // Idle: does not keep the event loop alive until a call is in flight.
  Check(env, napi_unref_threadsafe_function(env, channel->tsfn), "unref of the completion channel");
  // Added after the thread-safe function's own cleanup hook, so it runs before it (hooks run last-in first-out).
  auto* hook = new std::shared_ptr<CompletionChannel>(channel);
  Check(env,
        napi_add_env_cleanup_hook(
            env,
            [](void* arg) {
              auto* held = static_cast<std::shared_ptr<CompletionChannel>*>(arg);
              {
                std::lock_guard<std::mutex> lock((*held)->mutex);
                (*held)->open = false;
              }
              delete held;
            },
            hook),
        "registering the completion channel's cleanup");
  data.completions = std::move(channel);
}

PromiseWorker::PromiseWorker(Napi::Env env, Work work, Settle settle, const std::vector<Napi::Value>& keep_alive)
    : deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), settle_(std::move(settle)) {
  for (const auto& value : keep_alive) {
    if (value.IsObject()) refs_.push_back(Napi::Persistent(value.As<Napi::Object>()));
  }
  AddonData& data = GetAddonData(env);
  channel_ = data.completions;
  if (data.in_flight++ == 0) napi_ref_threadsafe_function(env, channel_->tsfn);
}

void PromiseWorker::Queue() {
  run_on_compute_thread([this] {
    Execute();
    // When the environment is gone, the worker is leaked: its references belong to that environment and cannot
    // be released from this thread.
    std::shared_ptr<CompletionChannel> channel = channel_;
    std::lock_guard<std::mutex> lock(channel->mutex);
    if (channel->open) napi_call_threadsafe_function(channel->tsfn, this, napi_tsfn_nonblocking);
  });
}

void PromiseWorker::Execute() {
  try {
    work_();
  } catch (...) {
    failed_ = true;
    error_ = describe_exception(std::current_exception());
  }
}

void PromiseWorker::CallJs(napi_env raw_env, napi_value, void*, void* data) {
  auto* worker = static_cast<PromiseWorker*>(data);
  if (raw_env == nullptr) return;  // environment torn down
  Napi::Env env(raw_env);
  AddonData& addon = GetAddonData(env);
  if (--addon.in_flight == 0) napi_unref_threadsafe_function(raw_env, addon.completions->tsfn);
  try {
    worker->Complete(env);
  } catch (...) {
    // The environment is terminating (a worker thread being stopped): JavaScript cannot run, so the Promise
    // cannot settle; nothing may escape this C callback.
  }
  delete worker;
}

void PromiseWorker::Complete(Napi::Env env) {
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

}  // namespace nodetune::binding
