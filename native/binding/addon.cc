// The addon's entry point: registers the binding's functions and classes. See lib/native.ts for the
// TypeScript interface that mirrors exactly what is exported here.
#include <napi.h>

#include "binding/addon_data.h"
#include "binding/async.h"
#include "binding/communicator_wrap.h"
#include "binding/errors.h"
#include "binding/model_wrap.h"
#include "binding/rng_binding.h"
#include "binding/runtime_binding.h"
#include "binding/tensor_wrap.h"

namespace nodetune::binding {

AddonData& GetAddonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  InitAsync(env);
  exports.Set("setErrorClass", Napi::Function::New<SetErrorClass>(env, "setErrorClass"));
  exports.Set("Tensor", TensorWrap::Define(env));
  DefineRuntime(env, exports);
  DefineRng(env, exports);
  DefineCommunicator(env, exports);
  DefineModel(env, exports);
  return exports;
}

}  // namespace nodetune::binding

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return nodetune::binding::Init(env, exports); }

NODE_API_MODULE(nodetune, InitAddon)
