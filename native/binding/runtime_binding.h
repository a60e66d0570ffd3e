// runtimeInfo(), setNumThreads(), measureMatmul(), measureReadBandwidth(): the process-wide runtime, exposed to JS.
#pragma once
#include <napi.h>

namespace nodetune::binding {
void DefineRuntime(Napi::Env env, Napi::Object exports);
}
