// Model: the optimizer's state to a file and back (checkpoints that resume exactly). The state itself is
// handled in native/train/optimizer_state.cc.
#include "binding/async.h"
#include "binding/errors.h"
#include "binding/model_wrap.h"
#include "train/optimizer_state.h"

namespace nodetune::binding {
namespace {

std::string FileArg(const Napi::CallbackInfo& info, const char* what) {
  if (!info[0].IsString()) fail("ERR_ARGUMENT", std::string(what) + "(file): file must be a string");
  return info[0].As<Napi::String>().Utf8Value();
}

}  // namespace

// saveOptimizerState(file) -> Promise<void>
Napi::Value ModelWrap::SaveOptimizerState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const std::string file = FileArg(info, "saveOptimizerState");
    if (!state_->optimizer) fail("ERR_STATE", "saveOptimizerState(): no optimizer; call configureOptimizer() first");
    auto state = state_;
    return RunAsync(
        env, {info.This()},
        [=] {
          std::lock_guard<std::mutex> lock(state->busy);
          train::save_optimizer_state(*state->optimizer, file);
        },
        [](Napi::Env e) -> Napi::Value { return e.Undefined(); });
  });
}

// loadOptimizerState(file) -> Promise<void>
Napi::Value ModelWrap::LoadOptimizerState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const std::string file = FileArg(info, "loadOptimizerState");
    if (!state_->optimizer) fail("ERR_STATE", "loadOptimizerState(): no optimizer; call configureOptimizer() first");
    auto state = state_;
    return RunAsync(
        env, {info.This()},
        [=] {
          std::lock_guard<std::mutex> lock(state->busy);
          train::load_optimizer_state(*state->optimizer, file);
        },
        [](Napi::Env e) -> Napi::Value { return e.Undefined(); });
  });
}

}  // namespace nodetune::binding
