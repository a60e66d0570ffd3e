// Per-environment state of the addon (one per Node.js thread that loads it).
#pragma once
#include <napi.h>

namespace nodetune::binding {

struct AddonData {
  Napi::FunctionReference error_class;   // lib/errors.ts NodetuneError, handed over once at load
  Napi::FunctionReference tensor_class;  // the Tensor ObjectWrap constructor
  Napi::FunctionReference communicator_class;
};

AddonData& GetAddonData(Napi::Env env);

}  // namespace nodetune::binding
