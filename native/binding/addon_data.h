// Per-environment state of the addon (one per Node.js thread that loads it).
#pragma once
#include <napi.h>

#include <cstddef>

namespace nodetune::binding {

struct AddonData {
  Napi::FunctionReference error_class;   // lib/errors.ts NodetuneError, handed over once at load
  Napi::FunctionReference tensor_class;  // the Tensor ObjectWrap constructor
  Napi::FunctionReference communicator_class;
  // Brings finished compute-thread calls back to this environment's JavaScript thread (binding/async.cc);
  // referenced (keeps the event loop alive) only while `in_flight` > 0.
  napi_threadsafe_function completions = nullptr;
  size_t in_flight = 0;
};

AddonData& GetAddonData(Napi::Env env);

}  // namespace nodetune::binding
