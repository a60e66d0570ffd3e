// manualSeed(), rngState(), setRngState(): LibTorch's generators, exposed to JS.
#pragma once
#include <napi.h>

namespace nodetune::binding {
void DefineRng(Napi::Env env, Napi::Object exports);
}
