// Model: training settings — the optimizer's state to a file and back (checkpoints that resume exactly; the
// state itself is handled in native/train/optimizer_state.cc) and dropout overrides.
#include <cmath>
#include <optional>

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
    return Queue(info, std::nullopt, [=](State& state) { train::save_optimizer_state(*state.optimizer, file); });
  });
}

// loadOptimizerState(file) -> Promise<void>
Napi::Value ModelWrap::LoadOptimizerState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const std::string file = FileArg(info, "loadOptimizerState");
    if (!state_->optimizer) fail("ERR_STATE", "loadOptimizerState(): no optimizer; call configureOptimizer() first");
    return Queue(info, std::nullopt, [=](State& state) { train::load_optimizer_state(*state.optimizer, file); });
  });
}

// setDropout({ embedding?, attention?, hidden?, classifier? }): absent keys keep their value.
Napi::Value ModelWrap::SetDropout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Guard(env, [&] {
    if (!info[0].IsObject()) fail("ERR_ARGUMENT", "setDropout(options): options must be an object");
    auto o = info[0].As<Napi::Object>();
    auto get = [&](const char* key) {
      Napi::Value v = o.Get(key);
      if (v.IsUndefined()) return -1.0;
      if (!v.IsNumber()) fail("ERR_ARGUMENT", std::string("setDropout(): ") + key + " must be a number");
      return v.As<Napi::Number>().DoubleValue();
    };
    const double embedding = get("embedding"), attention = get("attention"), hidden = get("hidden"), classifier = get("classifier");
    std::lock_guard<std::mutex> lock(state_->busy);
    state_->model->set_dropout(embedding, attention, hidden, classifier);
  });
  return env.Undefined();
}

// setGradientCheckpointing(enabled): recompute block activations in backward (less memory, one more forward).
Napi::Value ModelWrap::SetGradientCheckpointing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBoolean()) ThrowArgument(env, "setGradientCheckpointing(enabled): enabled must be a boolean");
  std::lock_guard<std::mutex> lock(state_->busy);
  state_->model->gradient_checkpointing = info[0].As<Napi::Boolean>().Value();
  return env.Undefined();
}

// lossScalerState() -> { scale, goodSteps, growthInterval }
Napi::Value ModelWrap::LossScalerState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::lock_guard<std::mutex> lock(state_->busy);
  Napi::Object out = Napi::Object::New(env);
  out.Set("scale", state_->scaler.scale);
  out.Set("goodSteps", static_cast<double>(state_->scaler.good_steps));
  out.Set("growthInterval", static_cast<double>(state_->scaler.growth_interval));
  return out;
}

// setLossScalerState({ scale?, goodSteps?, growthInterval? })
Napi::Value ModelWrap::SetLossScalerState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Guard(env, [&] {
    if (!info[0].IsObject()) fail("ERR_ARGUMENT", "setLossScalerState(state): state must be an object");
    auto o = info[0].As<Napi::Object>();
    auto num = [&](const char* key, double min) -> std::optional<double> {
      Napi::Value v = o.Get(key);
      if (v.IsUndefined()) return std::nullopt;
      double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= min) || !std::isfinite(d)) fail("ERR_ARGUMENT", std::string("setLossScalerState(): ") + key + " must be a finite number >= " + std::to_string(min));
      return d;
    };
    auto scale = num("scale", 1e-30), good = num("goodSteps", 0), interval = num("growthInterval", 1);
    std::lock_guard<std::mutex> lock(state_->busy);
    if (scale) state_->scaler.scale = *scale;
    if (good) state_->scaler.good_steps = static_cast<int64_t>(*good);
    if (interval) state_->scaler.growth_interval = static_cast<int64_t>(*interval);
  });
  return env.Undefined();
}

}  // namespace nodetune::binding
