#include "binding/rng_binding.h"

#include <cmath>

#include "binding/convert.h"
#include "binding/errors.h"
#include "core/device.h"
#include "core/rng.h"

namespace nodetune::binding {
namespace {

c10::Device DeviceArg(const Napi::Value& value) {
  auto name = OptionalString(value, "device");
  return parse_device(name.value_or("cpu"));
}

// manualSeed(seed: number)
Napi::Value ManualSeedJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double seed = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (!(seed >= 0) || std::floor(seed) != seed || seed > 9007199254740991.0)
    ThrowArgument(env, "manualSeed(seed): seed must be a non-negative integer");
  Guard(env, [&] { manual_seed(static_cast<uint64_t>(seed)); });
  return env.Undefined();
}

// rngState(device?) -> Uint8Array
Napi::Value RngStateJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    std::vector<uint8_t> bytes = rng_state(DeviceArg(info[0]));
    Napi::Uint8Array out = Napi::Uint8Array::New(env, bytes.size());
    std::copy(bytes.begin(), bytes.end(), out.Data());
    return out;
  });
}

// setRngState(state: Uint8Array, device?)
Napi::Value SetRngStateJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    ThrowArgument(env, "setRngState(state): state must be a Uint8Array from rngState()");
  auto array = info[0].As<Napi::Uint8Array>();
  std::vector<uint8_t> bytes(array.Data(), array.Data() + array.ElementLength());
  Guard(env, [&] { set_rng_state(DeviceArg(info[1]), bytes); });
  return env.Undefined();
}

}  // namespace

void DefineRng(Napi::Env env, Napi::Object exports) {
  exports.Set("manualSeed", Napi::Function::New<ManualSeedJs>(env, "manualSeed"));
  exports.Set("rngState", Napi::Function::New<RngStateJs>(env, "rngState"));
  exports.Set("setRngState", Napi::Function::New<SetRngStateJs>(env, "setRngState"));
}

}  // namespace nodetune::binding
