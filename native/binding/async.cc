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
  napi_value name = Napi::String::New(env, "nodetune");
  Check(env,
        napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, nullptr,
                                        &PromiseWorker::CallJs, &data.completions),
        "creating the completion channel");
  // Idle: does not keep the event loop alive until a call is in flight.
  Check(env, napi_unref_threadsafe_function(env, data.completions), "unref of the completion channel");
}

PromiseWorker::PromiseWorker(Napi::Env env, Work work, Settle settle, const std::vector<Napi::Value>& keep_alive)
    : deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), settle_(std::move(settle)) {
  for (const auto& value : keep_alive) {
    if (value.IsObject()) refs_.push_back(Napi::Persistent(value.As<Napi::Object>()));
  }
  AddonData& data = GetAddonData(env);
  tsfn_ = data.completions;
  if (data.in_flight++ == 0) napi_ref_threadsafe_function(env, tsfn_);
}

void PromiseWorker::Queue() {
  run_on_compute_thread([this] {
    Execute();
    // When the environment is gone (napi_closing), the worker is leaked: its references belong to that
    // environment and cannot be released from here.
    napi_call_threadsafe_function(tsfn_, this, napi_tsfn_blocking);
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
  if (--addon.in_flight == 0) napi_unref_threadsafe_function(raw_env, addon.completions);
  worker->Complete(env);
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
